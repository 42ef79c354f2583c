-- License codes may also come from the seller's system (license.issue).
ALTER TABLE license_codes DROP CONSTRAINT license_codes_source_check;
ALTER TABLE license_codes ADD CONSTRAINT license_codes_source_check CHECK (source IN ('souk', 'pool', 'seller'));
