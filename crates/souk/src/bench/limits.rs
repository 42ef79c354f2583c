//! The machine's limits, measured beside Souk's own figures in the same run: how fast the
//! database commits one row, how many requests a bare endpoint answers, and a process's CPU
//! time and memory (from /proc, so Linux only).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use souk_store::{DatabaseUrl, Db, q};

/// Requests per second `clients` concurrent clients get from `url` over `length`.
pub async fn http_requests_per_s(url: &str, clients: usize, length: Duration) -> anyhow::Result<f64> {
    let client = reqwest::Client::new();
    let start = Instant::now();
    let deadline = start + length;
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, url) = (client.clone(), url.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                let res = client.get(&url).send().await?;
                if !res.status().is_success() {
                    bail!("{url}: {}", res.status());
                }
                res.bytes().await?;
                n += 1;
            }
            anyhow::Ok(n)
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64())
}

/// One-row commits per second into SQLite, one writer (SQLite has one at a time), in the mode
/// Souk runs it: WAL with `synchronous = FULL`, through the same pool settings.
pub async fn sqlite_commits_per_s(dir: &Path, length: Duration) -> anyhow::Result<f64> {
    let db = Db::connect(&DatabaseUrl::sqlite_file(&dir.join("commits.db"))).await?;
    let mut c = db.clone();
    souk_store::Conn::execute(&mut c, q("CREATE TABLE IF NOT EXISTS commits (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)"))
        .await?;
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < length {
        let mut tx = db.begin().await?;
        souk_store::Conn::execute(&mut tx, q("INSERT INTO commits (v) VALUES ($1)").bind(n as i64)).await?;
        tx.commit().await?;
        n += 1;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    db.close().await;
    Ok(rate)
}

/// One-row commits per second into PostgreSQL: pgbench with a one-insert script, `clients`
/// connections, for `seconds`.
pub fn postgres_commits_per_s(url: &str, clients: usize, seconds: u64) -> anyhow::Result<f64> {
    let setup = std::process::Command::new("psql")
        .args([url, "-q", "-c", "CREATE TABLE IF NOT EXISTS souk_bench.commits (id BIGSERIAL PRIMARY KEY, v INT NOT NULL)"])
        .output()
        .context("running psql (PostgreSQL's client)")?;
    if !setup.status.success() {
        bail!("psql: {}", String::from_utf8_lossy(&setup.stderr));
    }
    let script = tempfile::NamedTempFile::new()?;
    std::fs::write(script.path(), "INSERT INTO souk_bench.commits (v) VALUES (1);\n")?;
    let script_path = script.path().to_str().context("script path")?;
    let (c, t) = (clients.to_string(), seconds.to_string());
    let out = std::process::Command::new("pgbench")
        .args(["-n", "-f", script_path, "-c", &c, "-j", "2", "-T", &t, url])
        .output()
        .context("running pgbench")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("pgbench: {}{}", text, String::from_utf8_lossy(&out.stderr));
    }
    text.lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no tps in pgbench's output: {text}"))
}

/// User plus system CPU time of a process so far, in milliseconds.
pub fn cpu_ms(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces; the fields after its ')' are plain.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).context("/proc stat")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    let ticks: f64 = f.get(11).context("utime")?.parse::<f64>()? + f.get(12).context("stime")?.parse::<f64>()?;
    Ok(ticks * 1000.0 / clock_ticks())
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// Resident memory of a process, in MB.
pub fn rss_mb(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("VmRSS")?;
    Ok(kb / 1024.0)
}

/// A process and all its descendants (a server that forks workers, as `medusa start
/// --cluster` does), from /proc's parent links.
pub fn process_tree(pid: u32) -> anyhow::Result<Vec<u32>> {
    let mut parents = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let Some(child) = entry?.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        // A process may end between the listing and the read.
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else { continue };
        let parent = stat.rsplit_once(')').and_then(|(_, r)| r.split_whitespace().nth(1)).and_then(|p| p.parse::<u32>().ok());
        if let Some(parent) = parent {
            parents.push((child, parent));
        }
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let p = tree[i];
        tree.extend(parents.iter().filter(|(_, parent)| *parent == p).map(|(c, _)| *c));
        i += 1;
    }
    Ok(tree)
}

/// CPU time of a process tree so far, in milliseconds (a child that ended is not counted).
pub fn tree_cpu_ms(pid: u32) -> anyhow::Result<f64> {
    process_tree(pid)?.into_iter().map(cpu_ms).sum()
}

/// Resident memory of a process tree, in MB.
pub fn tree_rss_mb(pid: u32) -> anyhow::Result<f64> {
    process_tree(pid)?.into_iter().map(rss_mb).sum()
}
