//! `souk bench search`: loads a synthetic catalog into a fresh database and measures the
//! storefront search the way the API runs it. Results go in docs/BENCHMARKS.md.

use std::time::Instant;

use anyhow::Context;
use chrono::Utc;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use souk_core::catalog::{ProductContent, ProductKind};
use souk_core::identity::Email;
use souk_core::site::{Lang, Site};
use souk_store::storefront::{self, Listing, Search};
use souk_store::{Backend, accounts, products};

const EN: &[&str] = &[
    "cloud",
    "data",
    "monitor",
    "backup",
    "secure",
    "analytics",
    "vector",
    "log",
    "chat",
    "crm",
    "erp",
    "invoice",
    "mail",
    "video",
    "storage",
    "network",
    "firewall",
    "identity",
    "kubernetes",
    "container",
    "database",
    "search",
    "queue",
    "stream",
    "edge",
    "cdn",
    "dns",
    "billing",
    "payment",
    "ledger",
    "report",
    "dashboard",
    "workflow",
    "form",
    "survey",
    "learning",
    "translate",
    "speech",
    "vision",
    "ocr",
    "map",
    "iot",
    "sensor",
    "fleet",
    "retail",
    "bank",
    "health",
    "school",
    "hotel",
    "uptime",
];
const ZH: &[&str] = &[
    "云",
    "数据",
    "监控",
    "备份",
    "安全",
    "分析",
    "智能",
    "向量",
    "日志",
    "客服",
    "财务",
    "发票",
    "邮件",
    "视频",
    "存储",
    "网络",
    "防火墙",
    "身份",
    "容器",
    "数据库",
    "搜索",
    "队列",
    "流式",
    "边缘",
    "加速",
    "计费",
    "支付",
    "报表",
    "大屏",
    "流程",
    "表单",
    "问卷",
    "学习",
    "翻译",
    "语音",
    "视觉",
    "识别",
    "地图",
    "物联网",
    "传感器",
    "车队",
    "零售",
    "银行",
    "医疗",
    "教育",
    "酒店",
    "政务",
    "园区",
    "制造",
    "能源",
];
const CATEGORIES: &[&str] =
    &["devops", "security", "data", "ai", "business", "collaboration", "infrastructure", "industry", "services"];

pub struct Options {
    pub database_url: Option<String>,
    pub products: usize,
    pub queries: usize,
}

/// Common Chinese characters, paired into a few thousand two-character words.
const HANZI: &str = "云数据监控备份安全分析智能向量日志客服财务发票邮件视频存储网络防火墙身份容器库搜索队列流式边缘加速计费支付报表大屏程表单问卷学习翻译语音视觉识别地图物联传感器车队零售银行医疗教育酒店政务园区制造能源管理平台服务系统企业应用开发测试运维部署集成迁移治理质量营销销售客户会员订单仓储物流采购合同审批协同办公文档会议招聘薪酬考勤";

/// A vocabulary the size of a real catalog's: the real words above, plus generated ones,
/// so that a word matches a realistic share of products rather than most of them.
struct Vocab {
    en: Vec<String>,
    zh: Vec<String>,
}

impl Vocab {
    fn new(rng: &mut StdRng) -> Self {
        let syllables = [
            "ka", "lo", "mi", "ra", "te", "zu", "ne", "vo", "si", "da", "po", "ri", "xa", "ly", "qu", "be", "fo", "gi", "ho",
            "ju",
        ];
        let mut en: Vec<String> = EN.iter().map(|w| (*w).to_owned()).collect();
        while en.len() < 3000 {
            let n = rng.gen_range(2..4);
            en.push((0..n).map(|_| *syllables.choose(rng).unwrap_or(&"ka")).collect());
        }
        let chars: Vec<char> = HANZI.chars().collect();
        let mut zh: Vec<String> = ZH.iter().map(|w| (*w).to_owned()).collect();
        while zh.len() < 3000 {
            let a = chars.choose(rng).copied().unwrap_or('云');
            let b = chars.choose(rng).copied().unwrap_or('数');
            zh.push(format!("{a}{b}"));
        }
        Self { en, zh }
    }

    /// A word, skewed towards the front of the list the way real word use is.
    fn word(&self, rng: &mut StdRng, zh: bool) -> &str {
        let list = if zh { &self.zh } else { &self.en };
        let u: f64 = rng.r#gen();
        &list[((list.len() as f64) * u * u * u) as usize % list.len()]
    }

    fn words(&self, rng: &mut StdRng, zh: bool, n: usize) -> String {
        let picked: Vec<&str> = (0..n).map(|_| self.word(rng, zh)).collect();
        if zh { picked.concat() } else { picked.join(" ") }
    }
}

pub async fn search(opts: Options) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (db, _) = super::fresh_database(opts.database_url.as_deref(), &dir).await?;
    let backend = db.backend();
    let mut rng = StdRng::seed_from_u64(42);
    let vocab = Vocab::new(&mut rng);
    let now = Utc::now();

    // One seller owns everything; products get a minimal draft and a storefront row per site.
    let mut tx = db.begin().await?;
    let seller = accounts::create(
        &mut tx,
        now,
        accounts::NewAccount {
            email: &Email::parse("email", "bench@souk.test").map_err(|e| anyhow::anyhow!(e))?,
            name: "Bench Seller",
            password_hash: "x",
            site: Site::Intl,
            lang: Lang::En,
            phone: None,
            staff_role: None,
        },
    )
    .await?;
    tx.commit().await?;
    let load_start = Instant::now();
    let mut tx = db.begin().await?;
    for i in 0..opts.products {
        let zh = i % 2 == 0;
        let name = format!("{} {}", vocab.words(&mut rng, zh, 2), i);
        let summary = vocab.words(&mut rng, zh, 8);
        let description = vocab.words(&mut rng, zh, 20);
        let tags = [vocab.words(&mut rng, zh, 1), vocab.words(&mut rng, zh, 1)];
        let category = CATEGORIES.choose(&mut rng).copied().unwrap_or("data");
        let content = ProductContent { name: name.clone(), ..Default::default() };
        let (p, _) = products::create(&mut tx, now, &seller.personal_org_id, ProductKind::Saas, &content, "bench").await?;
        let text = souk_core::search::index_text(&[&name, &summary, &tags.join(" "), &description]);
        for site in [Site::Cn, Site::Intl] {
            storefront::insert_listing(
                &mut tx,
                &Listing {
                    product_id: p.id.as_str(),
                    site,
                    seller_org_id: seller.personal_org_id.as_str(),
                    kind: "saas",
                    category,
                    name: &name,
                    summary: &summary,
                    min_price: Some(rng.gen_range(0..100_000)),
                    has_trial: rng.gen_bool(0.3),
                    listed_at: now + chrono::Duration::seconds(i as i64),
                    search_text: &text,
                },
            )
            .await?;
        }
        if i % 5000 == 4999 {
            tx.commit().await?;
            tx = db.begin().await?;
        }
    }
    tx.commit().await?;
    let load_secs = load_start.elapsed().as_secs_f64();
    // Measure the steady state a running PostgreSQL is in once autovacuum has passed, not
    // the moment after a bulk load. SQLite keeps no statistics unless asked, and Souk does
    // not ask, so it is measured as it runs.
    if backend == Backend::Postgres {
        souk_store::Conn::execute(&mut db.clone(), souk_store::q("VACUUM ANALYZE storefront")).await?;
    }

    let kinds = [
        "english word",
        "two english words",
        "chinese word",
        "chinese + category",
        "browse by category, price sort",
        "trial filter, newest",
    ];
    let mut timings: Vec<Vec<f64>> = vec![Vec::new(); kinds.len()];
    let mut hits_total = 0i64;
    let mut conn = db.clone();
    for n in 0..opts.queries {
        let k = n % kinds.len();
        let mut s = Search { sort: "relevance".into(), limit: 24, ..Default::default() };
        match k {
            0 => s.query = Some(vocab.words(&mut rng, false, 1)),
            1 => s.query = Some(vocab.words(&mut rng, false, 2)),
            2 => s.query = Some(vocab.words(&mut rng, true, 1)),
            3 => {
                s.query = Some(vocab.words(&mut rng, true, 1));
                s.category = CATEGORIES.choose(&mut rng).map(|c| (*c).to_owned());
            }
            4 => {
                s.category = CATEGORIES.choose(&mut rng).map(|c| (*c).to_owned());
                s.sort = "price".into();
            }
            _ => {
                s.has_trial = true;
                s.sort = "newest".into();
            }
        }
        let t = Instant::now();
        let (_, total) = storefront::search(&mut conn, &s, Site::Cn).await.context("search")?;
        timings[k].push(t.elapsed().as_secs_f64() * 1000.0);
        if total > 0 {
            hits_total += 1;
        }
    }
    let pct = super::percentile;
    println!(
        "souk bench search: {} products ({} storefront rows), {} queries, {:?}",
        opts.products,
        opts.products * 2,
        opts.queries,
        backend
    );
    println!("load: {load_secs:.1} s; queries with at least one hit: {hits_total}");
    println!("{:<32} {:>8} {:>8} {:>8}", "query", "p50 ms", "p95 ms", "p99 ms");
    let mut all: Vec<f64> = timings.iter().flatten().copied().collect();
    for (name, v) in kinds.iter().zip(timings.iter_mut()) {
        println!("{:<32} {:>8.2} {:>8.2} {:>8.2}", name, pct(v, 0.5), pct(v, 0.95), pct(v, 0.99));
    }
    println!("{:<32} {:>8.2} {:>8.2} {:>8.2}", "all", pct(&mut all, 0.5), pct(&mut all, 0.95), pct(&mut all, 0.99));
    db.close().await;
    Ok(())
}
