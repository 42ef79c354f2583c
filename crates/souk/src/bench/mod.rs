//! `souk bench …`: measurements behind docs/BENCHMARKS.md. Each runs on a fresh database of
//! its own: a temporary SQLite file, or with `--database-url postgres://…` a schema
//! `souk_bench` dropped and made again, so that runs start alike.

pub mod crash;
pub mod deliveries;
pub mod limits;
pub mod medusa;
pub mod purchase;
pub mod search;

use souk_store::{Backend, DatabaseUrl, Db};

/// A fresh, migrated database; the URL that reaches it (for a server process to use).
pub async fn fresh_database(database_url: Option<&str>, dir: &tempfile::TempDir) -> anyhow::Result<(Db, DatabaseUrl)> {
    let url = match database_url {
        None => DatabaseUrl::sqlite_file(&dir.path().join("bench.db")),
        Some(u) => DatabaseUrl::parse(u)?,
    };
    let url = if url.backend() == Backend::Postgres {
        let admin = Db::connect_with(&url, 1).await?;
        let mut c = admin.clone();
        souk_store::Conn::execute(&mut c, souk_store::q("DROP SCHEMA IF EXISTS souk_bench CASCADE")).await?;
        souk_store::Conn::execute(&mut c, souk_store::q("CREATE SCHEMA souk_bench")).await?;
        admin.close().await;
        let sep = if url.expose().contains('?') { '&' } else { '?' };
        DatabaseUrl::parse(&format!("{}{sep}options=-c%20search_path%3Dsouk_bench", url.expose()))?
    } else {
        url
    };
    let db = Db::connect(&url).await?;
    db.migrate().await?;
    Ok((db, url))
}

/// A fresh database with the demo marketplace loaded, for a `souk serve` child: its backend,
/// URL and the sealing key (hex) the child must be given.
pub async fn demo_database(
    database_url: Option<&str>,
    dir: &tempfile::TempDir,
) -> anyhow::Result<(Backend, DatabaseUrl, String)> {
    let (db, url) = fresh_database(database_url, dir).await?;
    let backend = db.backend();
    let key: [u8; 32] = rand::random();
    let config = souk_server::ServerConfig { secret_key: Some(key.to_vec()), ..souk_server::ServerConfig::default() };
    let state = souk_server::AppState::new(db.clone(), std::sync::Arc::new(souk_store::clock::SystemClock), config);
    souk_server::demo::load(&state).await.map_err(|e| anyhow::anyhow!(e.message()))?;
    db.close().await;
    Ok((backend, url, hex::encode(key)))
}

/// The value below which a share `p` of the samples fall (nearest rank); 0 for none.
pub fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() { 0.0 } else { v[((v.len() as f64 - 1.0) * p).round() as usize] }
}

/// The median of several runs' figures.
pub fn median(mut v: Vec<f64>) -> f64 {
    percentile(&mut v, 0.5)
}
