//! The demo catalog: products of every kind, in Chinese and English, published by the two
//! demo sellers through the same review path a real seller follows.

use serde_json::json;
use souk_core::catalog::{ProductContent, ProductKind};
use souk_core::id::{OrgId, SessionId};
use souk_store::accounts::Account;
use souk_store::{products, sellers};

use crate::AppState;
use crate::auth::{Caller, Principal};
use crate::catalog;
use crate::error::{Error, Result};

/// (name, summary, category, kind, monthly price in minor units, trial days, tags)
type Item = (&'static str, &'static str, &'static str, &'static str, i64, u32, &'static [&'static str]);

const INTL: &[Item] = &[
    (
        "Acme Monitor",
        "Uptime and latency monitoring for websites and APIs",
        "devops",
        "saas",
        1500,
        14,
        &["monitoring", "uptime", "alerts"],
    ),
    (
        "Acme Log Search",
        "Centralised logs with fast full-text search and retention policies",
        "devops",
        "saas",
        4900,
        14,
        &["logs", "observability"],
    ),
    ("Acme CI Runners", "Managed build runners that scale to zero", "devops", "saas", 2900, 0, &["ci", "builds"]),
    (
        "Acme Status Pages",
        "Public and private status pages with incident updates",
        "devops",
        "saas",
        900,
        30,
        &["status", "incidents"],
    ),
    (
        "Acme Secrets Vault",
        "Encrypted secrets storage with rotation and audit trails",
        "security",
        "saas",
        3900,
        14,
        &["secrets", "encryption"],
    ),
    ("Acme WAF", "Web application firewall rules managed for you", "security", "saas", 9900, 0, &["firewall", "waf"]),
    (
        "Acme Vulnerability Scanner",
        "Scans container images and hosts for known CVEs",
        "security",
        "saas",
        5900,
        14,
        &["cve", "scanning"],
    ),
    ("Acme Data Warehouse", "Columnar analytics warehouse billed by what you query", "data", "saas", 0, 0, &["analytics", "sql"]),
    (
        "Acme ETL Pipelines",
        "Move data between databases and SaaS tools on a schedule",
        "data",
        "saas",
        6900,
        14,
        &["etl", "integration"],
    ),
    ("Acme Dashboards", "Self-service dashboards on top of your databases", "data", "saas", 1900, 30, &["bi", "charts"]),
    ("Acme Vector Search", "Managed vector database for semantic search", "ai", "saas", 4500, 14, &["vectors", "embeddings"]),
    ("Acme Model Gateway", "One API for many language models, with usage limits", "ai", "saas", 0, 0, &["llm", "api"]),
    ("Acme CRM", "Contacts, deals and pipelines for small sales teams", "business", "saas", 2500, 30, &["crm", "sales"]),
    ("Acme Invoicing", "Quotes, invoices and payment reminders", "business", "saas", 1200, 30, &["invoices", "billing"]),
    ("Acme Team Chat", "Channels, threads and video calls for teams", "collaboration", "saas", 600, 30, &["chat", "video"]),
    ("Acme Wiki", "A team wiki with page history and fine-grained access", "collaboration", "saas", 500, 30, &["wiki", "docs"]),
    (
        "Ubuntu 24.04 LTS Hardened",
        "CIS-hardened Ubuntu server image with automatic updates",
        "infrastructure",
        "image",
        800,
        0,
        &["linux", "ubuntu", "cis"],
    ),
    (
        "PostgreSQL 17 Server Image",
        "PostgreSQL tuned for cloud disks, with backups configured",
        "infrastructure",
        "image",
        1200,
        0,
        &["postgresql", "database"],
    ),
    (
        "Acme Backup Agent License",
        "Perpetual license codes for the Acme backup agent",
        "infrastructure",
        "license",
        19900,
        0,
        &["backup", "license"],
    ),
    (
        "Kubernetes Migration Service",
        "Our engineers move your workloads to Kubernetes",
        "services",
        "service",
        500000,
        0,
        &["kubernetes", "migration"],
    ),
];

const CN: &[Item] = &[
    ("云栈监控", "面向云主机和容器的一站式监控告警", "devops", "saas", 9900, 14, &["监控", "告警"]),
    ("云栈日志服务", "日志采集、检索与分析，支持海量数据", "devops", "saas", 19900, 14, &["日志", "运维"]),
    ("云栈持续交付", "代码构建、测试与部署流水线", "devops", "saas", 29900, 0, &["流水线", "部署"]),
    ("云栈主机安全", "主机入侵检测、漏洞扫描与基线检查", "security", "saas", 39900, 14, &["安全", "漏洞"]),
    ("云栈数据加密", "数据库字段级加密与密钥管理", "security", "saas", 49900, 0, &["加密", "密钥"]),
    ("云栈堡垒机", "运维审计堡垒机，操作全程录像", "security", "image", 29900, 0, &["审计", "堡垒机"]),
    ("大数据分析平台", "面向企业的数据分析与可视化平台", "data", "saas", 99900, 30, &["大数据", "分析"]),
    ("数据库备份服务", "自动备份云数据库，按需恢复", "data", "saas", 5900, 14, &["备份", "数据库"]),
    ("数据治理中台", "元数据管理、数据质量与血缘分析", "data", "saas", 199900, 0, &["数据治理", "元数据"]),
    ("智能客服机器人", "基于大模型的多轮对话客服", "ai", "saas", 49900, 14, &["客服", "大模型"]),
    ("OCR文字识别", "证件、票据与通用文字识别接口", "ai", "saas", 0, 0, &["OCR", "识别"]),
    ("云栈ERP", "财务、供应链与生产管理一体化", "business", "saas", 99900, 30, &["ERP", "财务"]),
    ("电子合同签署", "合规的电子签名与合同管理", "business", "saas", 19900, 14, &["电子签名", "合同"]),
    ("协同办公套件", "文档、会议、审批一体化协同办公", "collaboration", "saas", 2900, 30, &["办公", "审批"]),
    ("CentOS 加固镜像", "等保合规加固的 CentOS 服务器镜像", "infrastructure", "image", 4900, 0, &["镜像", "等保"]),
    ("宝塔面板镜像", "一键部署网站与数据库的服务器镜像", "infrastructure", "image", 0, 0, &["面板", "建站"]),
    ("杀毒软件授权码", "企业终端杀毒软件年度授权", "security", "license", 29900, 0, &["杀毒", "授权码"]),
    ("智慧园区解决方案", "园区安防、能耗与访客管理", "industry", "saas", 299900, 0, &["园区", "物联网"]),
    ("上云迁移服务", "专业工程师协助业务迁移上云", "services", "service", 2000000, 0, &["迁移", "上云"]),
    ("等保测评咨询", "等级保护测评咨询与整改服务", "services", "service", 3000000, 0, &["等保", "咨询"]),
];

fn content(item: &Item, seller_site: &str) -> serde_json::Value {
    let (name, summary, category, kind, price, trial, tags) = *item;
    let sites: Vec<&str> = if seller_site == "cn" { vec!["cn"] } else { vec!["intl", "cn"] };
    // The cn price of an intl product: about seven yuan to the dollar, rounded to the yuan.
    let prices = |minor: i64| -> serde_json::Value {
        sites
            .iter()
            .map(|s| json!({"site": s, "amount_minor": if *s == seller_site { minor } else { (minor * 7 / 100) * 100 }}))
            .collect()
    };
    let plans = match kind {
        "license" | "service" => {
            json!([{"code": "one-time", "name": if seller_site == "cn" { "标准版" } else { "Standard" }, "billing": {"type": "one_time"}, "prices": prices(price)}])
        }
        _ if price == 0 => {
            json!([{"code": "pay-as-you-go", "name": if seller_site == "cn" { "按量付费" } else { "Pay as you go" },
            "billing": {"type": "pay_per_use", "dimensions": [{"key": "requests", "unit": if seller_site == "cn" { "千次调用" } else { "1k requests" }, "prices": prices(50)}]}}])
        }
        _ => {
            let trial = if trial > 0 { json!({"days": trial}) } else { serde_json::Value::Null };
            json!([
                {"code": "monthly", "name": if seller_site == "cn" { "包月" } else { "Monthly" }, "billing": {"type": "periodic", "period": "month"}, "prices": prices(price), "trial": trial},
                {"code": "yearly", "name": if seller_site == "cn" { "包年" } else { "Yearly" }, "billing": {"type": "periodic", "period": "year"}, "prices": prices(price * 10)},
            ])
        }
    };
    let description = if seller_site == "cn" {
        format!("## {name}\n\n{summary}。\n\n- 开通即用，按需扩容\n- 7×24 小时技术支持\n- 符合等保合规要求")
    } else {
        format!(
            "## {name}\n\n{summary}.\n\n- Ready in minutes, scales with you\n- 24/7 support from the people who built it\n- SOC 2 controls in place"
        )
    };
    let mut c = json!({
        "name": name, "summary": summary, "description": description, "category": category,
        "tags": tags, "support_email": if seller_site == "cn" { "support@yunzhan.test" } else { "support@acme.test" },
        "sites": sites, "plans": plans,
    });
    if kind == "image" {
        c["image"] = json!({"image_ref": format!("img-{}", name.len()), "flavors": ["s6.large.2", "s6.xlarge.2"], "regions": ["cn-north-4", "ap-southeast-1"], "min_disk_gb": 40});
    }
    c
}

fn as_caller(account: &Account, state: &AppState) -> Caller {
    // The demo acts as its people so that every rule and audit entry applies; the session id
    // is never stored or used.
    Caller(Principal::Account { account: account.clone(), session: SessionId::generate(state.clock.now()) })
}

/// Publishes the demo catalog unless the seller already has products.
pub async fn load(state: &AppState, operator: &Account, seller: &Account, org: &OrgId, site: &str) -> Result<usize> {
    let mut db = state.db.clone();
    if !products::list_for_seller(&mut db, org).await?.is_empty() {
        return Ok(0);
    }
    let op = as_caller(operator, state);
    let me = as_caller(seller, state);
    if sellers::current_agreements(&mut db, state.clock.now()).await?.is_empty() {
        catalog::publish_agreement(
            state,
            &op,
            "seller-agreement",
            "KooGallery-style seller agreement",
            "Sellers list only what they can deliver, answer buyers within one working day and honour refunds.",
            None,
            None,
        )
        .await?;
    }
    for a in sellers::missing_acceptances(&mut db, state.clock.now(), org).await? {
        catalog::accept_agreement(state, &me, org, &a.id, None).await?;
    }
    if sellers::get(&mut db, org).await?.is_none() {
        catalog::apply_to_sell(state, &me, org, None).await?;
        catalog::decide_seller(state, &op, org, true, None, None).await?;
    }
    let items = if site == "cn" { CN } else { INTL };
    let mut n = 0;
    for item in items {
        let content: ProductContent = serde_json::from_value(content(item, site)).map_err(|e| Error::Internal(e.into()))?;
        let kind = ProductKind::parse(item.3).ok_or_else(|| Error::Internal(anyhow::anyhow!("bad kind")))?;
        let (p, _) = catalog::create_product(state, &me, org, kind, content, None).await?;
        let rev = catalog::submit(state, &me, org, &p.id, None).await?;
        catalog::decide(state, &op, &rev.id, true, Vec::new(), None).await?;
        n += 1;
    }
    Ok(n)
}
