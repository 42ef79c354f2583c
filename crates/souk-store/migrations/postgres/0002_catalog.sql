-- Catalog: categories, agreements, seller onboarding and enforcement, products with
-- reviewed revisions, plans, and the storefront's search index.

CREATE TABLE categories (
    slug     TEXT PRIMARY KEY,
    name_en  TEXT NOT NULL,
    name_zh  TEXT NOT NULL,
    position BIGINT NOT NULL
);
INSERT INTO categories (slug, name_en, name_zh, position) VALUES
    ('devops', 'DevOps & monitoring', '开发运维与监控', 1),
    ('security', 'Security', '安全', 2),
    ('data', 'Data & analytics', '数据与分析', 3),
    ('ai', 'AI & machine learning', '人工智能', 4),
    ('business', 'Business applications', '企业应用', 5),
    ('collaboration', 'Collaboration', '协同办公', 6),
    ('infrastructure', 'Infrastructure & images', '基础设施与镜像', 7),
    ('industry', 'Industry solutions', '行业解决方案', 8),
    ('services', 'Professional services', '专业服务', 9);

-- Per-site exceptions to the Monday-to-Friday week: holidays, and weekend days worked.
CREATE TABLE calendar_days (
    site    TEXT NOT NULL,
    day     TEXT NOT NULL,
    working BOOLEAN NOT NULL,
    PRIMARY KEY (site, day)
);

CREATE TABLE agreements (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    version      BIGINT NOT NULL,
    title        TEXT NOT NULL,
    body         TEXT NOT NULL,
    effective_at TIMESTAMPTZ NOT NULL,
    published_by TEXT NOT NULL,
    published_at TIMESTAMPTZ NOT NULL,
    UNIQUE (kind, version)
);

CREATE TABLE agreement_acceptances (
    org_id       TEXT NOT NULL REFERENCES orgs(id),
    agreement_id TEXT NOT NULL REFERENCES agreements(id),
    accepted_by  TEXT NOT NULL,
    accepted_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (org_id, agreement_id)
);

CREATE TABLE sellers (
    org_id     TEXT PRIMARY KEY REFERENCES orgs(id),
    status     TEXT NOT NULL CHECK (status IN ('applied', 'approved', 'rejected', 'suspended')),
    applied_by TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL,
    decided_by TEXT,
    decided_at TIMESTAMPTZ,
    reason     TEXT,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE enforcement_actions (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES orgs(id),
    product_id TEXT,
    action     TEXT NOT NULL CHECK (action IN ('warn', 'delist', 'relist', 'suspend', 'reinstate')),
    reason     TEXT NOT NULL,
    actor      TEXT NOT NULL,
    at         TIMESTAMPTZ NOT NULL
);
CREATE INDEX enforcement_org ON enforcement_actions(org_id);

CREATE TABLE products (
    id               TEXT PRIMARY KEY,
    seller_org_id    TEXT NOT NULL REFERENCES orgs(id),
    kind             TEXT NOT NULL CHECK (kind IN ('saas', 'image', 'license', 'service')),
    live_revision_id TEXT,
    listed           BOOLEAN NOT NULL DEFAULT TRUE,
    delisted_reason  TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX products_seller ON products(seller_org_id);

CREATE TABLE product_revisions (
    id                TEXT PRIMARY KEY,
    product_id        TEXT NOT NULL REFERENCES products(id),
    number            BIGINT NOT NULL,
    state             TEXT NOT NULL CHECK (state IN ('draft', 'submitted', 'in_review', 'approved', 'rejected', 'withdrawn')),
    content           TEXT NOT NULL,
    created_by        TEXT NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    submitted_at      TIMESTAMPTZ,
    sla_due_at        TIMESTAMPTZ,
    reviewer          TEXT,
    review_started_at TIMESTAMPTZ,
    decided_by        TEXT,
    decided_at        TIMESTAMPTZ,
    reasons           TEXT,
    -- Set once the "SLA at risk" event was sent, so it is sent once.
    sla_warned_at     TIMESTAMPTZ,
    UNIQUE (product_id, number)
);
CREATE UNIQUE INDEX product_revisions_one_open ON product_revisions(product_id) WHERE state IN ('draft', 'submitted', 'in_review');
CREATE INDEX product_revisions_queue ON product_revisions(state, sla_due_at);

CREATE TABLE plans (
    id         TEXT PRIMARY KEY,
    product_id TEXT NOT NULL REFERENCES products(id),
    code       TEXT NOT NULL,
    spec       TEXT NOT NULL,
    retired_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX plans_product ON plans(product_id);

CREATE TABLE storefront (
    product_id    TEXT NOT NULL REFERENCES products(id),
    site          TEXT NOT NULL,
    seller_org_id TEXT NOT NULL,
    kind          TEXT NOT NULL,
    category      TEXT NOT NULL,
    name          TEXT NOT NULL,
    summary       TEXT NOT NULL,
    min_price     BIGINT,
    has_trial     BOOLEAN NOT NULL,
    listed_at     TIMESTAMPTZ NOT NULL,
    search_text   TEXT NOT NULL,
    -- The tokens `souk_core::search` produced, as a tsvector with no further processing.
    search_tsv    TSVECTOR GENERATED ALWAYS AS (to_tsvector('simple', search_text)) STORED,
    PRIMARY KEY (product_id, site)
);
CREATE INDEX storefront_category_price ON storefront(site, category, min_price);
CREATE INDEX storefront_category_newest ON storefront(site, category, listed_at);
CREATE INDEX storefront_newest ON storefront(site, listed_at);
CREATE INDEX storefront_price ON storefront(site, min_price);
CREATE INDEX storefront_trial ON storefront(site, has_trial, listed_at);
CREATE INDEX storefront_search ON storefront USING GIN (search_tsv);
