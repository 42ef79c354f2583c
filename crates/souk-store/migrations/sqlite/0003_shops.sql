-- Shop decoration: each seller's shop page, edited and reviewed in revisions like products.
CREATE TABLE shops (
    org_id           TEXT PRIMARY KEY REFERENCES orgs(id),
    live_revision_id TEXT,
    updated_at       TEXT NOT NULL
);

CREATE TABLE shop_revisions (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES orgs(id),
    number        INTEGER NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('draft', 'submitted', 'in_review', 'approved', 'rejected', 'withdrawn')),
    content       TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    submitted_at  TEXT,
    sla_due_at    TEXT,
    decided_by    TEXT,
    decided_at    TEXT,
    reasons       TEXT,
    sla_warned_at TEXT,
    UNIQUE (org_id, number)
);
CREATE UNIQUE INDEX shop_revisions_one_open ON shop_revisions(org_id) WHERE state IN ('draft', 'submitted', 'in_review');
CREATE INDEX shop_revisions_queue ON shop_revisions(state, sla_due_at);
