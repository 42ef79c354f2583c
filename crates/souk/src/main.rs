//! `souk`: the one binary. `souk serve` runs the marketplace; `souk demo` loads demo data;
//! `souk migrate` applies migrations; `souk admin create-operator` makes the first operator.

mod bench;
mod config;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use souk_core::identity::{Email, Name, Password};
use souk_core::site::Site;
use souk_server::{AppState, ServerConfig};
use souk_store::clock::SystemClock;
use souk_store::{Backend, Db};

use config::{Config, LogFormat, Overrides};

#[derive(Parser)]
#[command(name = "souk", version, about = "Souk: an open-source, self-hostable cloud marketplace")]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct GlobalArgs {
    /// A TOML file with settings (listen, data_dir, database_url, secure_cookies, log_format).
    #[arg(long, global = true, env = "SOUK_CONFIG")]
    config: Option<PathBuf>,
    /// Folder for the embedded SQLite database [default: ./souk-data].
    #[arg(long, global = true, env = "SOUK_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// sqlite://path or postgres://user@host/db [default: SQLite in the data folder].
    #[arg(long, global = true, env = "SOUK_DATABASE_URL")]
    database_url: Option<String>,
    /// Log format: text or json [default: text].
    #[arg(long, global = true, env = "SOUK_LOG_FORMAT")]
    log_format: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the marketplace: HTTP API, pages and background workers.
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Load the demo marketplace into the database (safe to run again).
    Demo,
    /// Administrative tasks.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Benchmarks (see docs/BENCHMARKS.md). They use a fresh database of their own.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Tools for sellers' systems (docs/PROTOCOL.md): a reference seller and a conformance check.
    #[command(subcommand)]
    Isv(IsvCommand),
}

#[derive(Subcommand)]
enum IsvCommand {
    /// Serve a working reference seller endpoint at http://ADDR/ (instances kept in memory).
    Demo(IsvDemoArgs),
    /// Drive a seller endpoint through a whole subscription life and check every answer.
    Check(IsvCheckArgs),
}

#[derive(Args)]
struct IsvDemoArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9100")]
    listen: String,
    /// The product's signing secret (whsec_…) from Souk's integration settings, or with
    /// `--protocol koogallery` the access key; one is made up and printed when not given.
    /// Repeat during a rotation.
    #[arg(long, env = "SOUK_ISV_SECRET", hide_env_values = true)]
    secret: Vec<String>,
    /// native or koogallery.
    #[arg(long, default_value = "native")]
    protocol: String,
}

#[derive(Args)]
struct IsvCheckArgs {
    /// The seller endpoint to check.
    #[arg(long)]
    endpoint: String,
    /// The product's signing secret (whsec_…), or with `--protocol koogallery` the access key.
    #[arg(long, env = "SOUK_ISV_SECRET", hide_env_values = true)]
    secret: String,
    /// native or koogallery.
    #[arg(long, default_value = "native")]
    protocol: String,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Storefront search over a synthetic catalog. With --database-url postgres://…, runs in
    /// a schema `souk_bench` that it drops and recreates; otherwise in a temporary SQLite file.
    Search {
        #[arg(long, default_value_t = 100_000)]
        products: usize,
        #[arg(long, default_value_t = 1200)]
        queries: usize,
    },
    /// Purchase → provisioned: concurrent buyers buy a SaaS plan over HTTP from a `souk serve`
    /// process until the reference seller has provisioned it; with the machine's limits (bare
    /// HTTP requests/s, single-row commits/s) measured in the same run.
    Purchase {
        /// Concurrent buyers, one level after another.
        #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
        concurrency: Vec<usize>,
        /// Length of each run.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Runs per level; the figures are their medians.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Buyers poll their subscription (every --poll-ms) instead of asking the server to
        /// answer when it changes.
        #[arg(long)]
        poll: bool,
        /// How often a polling buyer reads its subscription while waiting for the seller.
        #[arg(long, default_value_t = 5)]
        poll_ms: u64,
        /// A Medusa v2 server (scripts/peers/medusa.sh starts one) whose place-order flow
        /// runs right after each of Souk's runs, at the same concurrency.
        #[arg(long, requires = "medusa_seed")]
        medusa: Option<String>,
        /// The JSON line the Medusa project's seed script printed.
        #[arg(long, requires = "medusa")]
        medusa_seed: Option<String>,
        /// The Medusa server's process, for its CPU per order and memory.
        #[arg(long, requires = "medusa")]
        medusa_pid: Option<u32>,
    },
    /// Crash safety: buyers place orders while the server is killed with SIGKILL and started
    /// again; then every acknowledged order, provisioning and wallet ledger is checked.
    Crash {
        #[arg(long, default_value_t = 1000)]
        orders: usize,
        #[arg(long, default_value_t = 8)]
        buyers: usize,
        #[arg(long, default_value_t = 3)]
        kills: usize,
        /// `souk serve` processes on the one database (more than one needs PostgreSQL).
        #[arg(long, default_value_t = 1)]
        nodes: usize,
    },
    /// Webhook delivery: bursts of events to endpoints on a local receiver (answering at once,
    /// after 50 ms, with 5% errors); with --hook0-worker, Hook0's output worker on the same
    /// bursts to the same receiver (PostgreSQL only).
    Deliveries {
        #[arg(long, default_value_t = 10_000)]
        events: usize,
        #[arg(long, default_value_t = 10)]
        endpoints: usize,
        /// Runs per receiver mode; the figures are their medians.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// The receiver modes to run, in order: ok (answers at once), slow (after 50 ms),
        /// flaky (5% errors).
        #[arg(long, value_delimiter = ',', default_value = "ok,slow,flaky")]
        modes: Vec<bench::deliveries::Mode>,
        /// The `hook0-output-worker` binary (cargo install hook0-output-worker@0.3.0).
        #[arg(long, requires = "hook0_migrations")]
        hook0_worker: Option<std::path::PathBuf>,
        /// hook0-api 0.1.0's `migrations` folder (from its crate source).
        #[arg(long, requires = "hook0_worker")]
        hook0_migrations: Option<std::path::PathBuf>,
    },
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "SOUK_LISTEN")]
    listen: Option<String>,
    /// Mark cookies Secure (when Souk is served over HTTPS).
    #[arg(long, env = "SOUK_SECURE_COOKIES")]
    secure_cookies: Option<bool>,
    /// Hosts or IPs in your own network that deliveries to sellers may reach (comma-separated;
    /// private and loopback addresses are refused otherwise).
    #[arg(long, env = "SOUK_OUTBOUND_ALLOW", value_delimiter = ',')]
    outbound_allow: Option<Vec<String>>,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a platform operator (or make an existing account one).
    CreateOperator(CreateOperatorArgs),
}

#[derive(Args)]
struct CreateOperatorArgs {
    #[arg(long)]
    email: String,
    /// Display name [default: the part of the email before @].
    #[arg(long)]
    name: Option<String>,
    /// At least 10 characters. Taken from SOUK_ADMIN_PASSWORD if not given.
    #[arg(long, env = "SOUK_ADMIN_PASSWORD", hide_env_values = true)]
    password: String,
    /// cn or intl.
    #[arg(long, default_value = "intl")]
    site: String,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let (listen, secure_cookies, outbound_allow) = match &cli.command {
        Command::Serve(s) => (s.listen.clone(), s.secure_cookies, s.outbound_allow.clone()),
        _ => (None, None, None),
    };
    let config = Config::resolve(Overrides {
        config: cli.global.config.clone(),
        listen,
        data_dir: cli.global.data_dir.clone(),
        database_url: cli.global.database_url.clone(),
        secure_cookies,
        outbound_allow,
        log_format: cli.global.log_format.clone(),
        // A secret: from the environment or the config file only, never a flag (which
        // would show in process listings).
        secret_key: std::env::var("SOUK_SECRET_KEY").ok().filter(|k| !k.is_empty()),
        // Mail and SMS settings carry credentials: the environment or the file, never a flag.
        smtp_url: std::env::var("SOUK_SMTP_URL").ok(),
        mail_from: std::env::var("SOUK_MAIL_FROM").ok(),
        sms_url: std::env::var("SOUK_SMS_URL").ok(),
        sms_auth: std::env::var("SOUK_SMS_AUTH").ok(),
    })?;
    init_tracing(config.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run(cli.command, config, cli.global.database_url.clone()))
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn open(config: &Config) -> anyhow::Result<Db> {
    if config.database_url.backend() == Backend::Sqlite {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating data folder {}", config.data_dir.display()))?;
    }
    let db = Db::connect(&config.database_url).await.with_context(|| format!("connecting to {}", config.database_url))?;
    db.migrate().await.context("applying migrations")?;
    Ok(db)
}

fn state(db: Db, config: &Config) -> AppState {
    AppState::new(
        db,
        Arc::new(SystemClock),
        ServerConfig {
            secure_cookies: config.secure_cookies,
            node_id: souk_server::default_node_id(),
            secret_key: config.secret_key.clone(),
            outbound_allow: config.outbound_allow.clone(),
            smtp_url: config.smtp_url.clone(),
            mail_from: config.mail_from.clone().unwrap_or_else(|| souk_server::messages::DEFAULT_FROM.to_owned()),
            sms_url: config.sms_url.clone(),
            sms_auth: config.sms_auth.clone(),
            ..ServerConfig::default()
        },
    )
}

async fn run(command: Command, config: Config, explicit_database_url: Option<String>) -> anyhow::Result<()> {
    match command {
        Command::Serve(_) => {
            let db = open(&config).await?;
            let listener =
                tokio::net::TcpListener::bind(config.listen).await.with_context(|| format!("listening on {}", config.listen))?;
            let addr = listener.local_addr()?;
            println!("Souk is running at http://{addr}/  (database: {})", config.database_url);
            let (tx, rx) = tokio::sync::watch::channel(false);
            tokio::spawn(async move {
                let _ = tokio::signal::ctrl_c().await;
                let _ = tx.send(true);
            });
            souk_server::serve(state(db, &config), listener, rx).await
        }
        Command::Migrate => {
            open(&config).await?;
            println!("Migrations applied to {}", config.database_url);
            Ok(())
        }
        Command::Demo => {
            let db = open(&config).await?;
            let accounts = souk_server::demo::load(&state(db, &config)).await.map_err(|e| anyhow::anyhow!(e.message()))?;
            println!("Demo marketplace loaded into {}\n", config.database_url);
            println!("{:<20} {:<24} {:<20} organization", "role", "email", "password");
            for a in accounts {
                println!(
                    "{:<20} {:<24} {:<20} {}{}",
                    a.role,
                    a.email,
                    a.password,
                    a.org.as_deref().unwrap_or("(personal)"),
                    if a.created { "" } else { "  [already there]" }
                );
            }
            println!("\nNow run `souk serve` and open http://{}/", config.listen);
            Ok(())
        }
        Command::Bench(BenchCommand::Search { products, queries }) => {
            bench::search::search(bench::search::Options { database_url: explicit_database_url, products, queries }).await
        }
        Command::Bench(BenchCommand::Crash { orders, buyers, kills, nodes }) => {
            bench::crash::run(bench::crash::Options { database_url: explicit_database_url, orders, buyers, kills, nodes }).await
        }
        Command::Bench(BenchCommand::Deliveries { events, endpoints, runs, modes, hook0_worker, hook0_migrations }) => {
            let hook0 = hook0_worker.zip(hook0_migrations);
            let opts = bench::deliveries::Options { database_url: explicit_database_url, events, endpoints, runs, modes, hook0 };
            bench::deliveries::run(opts).await
        }
        Command::Bench(BenchCommand::Purchase { concurrency, seconds, runs, poll, poll_ms, medusa, medusa_seed, medusa_pid }) => {
            let medusa = match (medusa, medusa_seed) {
                (Some(url), Some(seed)) => Some(bench::medusa::Medusa::new(&url, &seed, medusa_pid)?),
                _ => None,
            };
            let read = if poll {
                bench::purchase::Read::Poll(std::time::Duration::from_millis(poll_ms))
            } else {
                bench::purchase::Read::Wait
            };
            let opts = bench::purchase::Options { database_url: explicit_database_url, concurrency, seconds, runs, read, medusa };
            bench::purchase::run(opts).await
        }
        Command::Isv(IsvCommand::Demo(args)) if args.protocol == "koogallery" => {
            let key = match args.secret.first() {
                Some(k) => k.clone(),
                None => {
                    let k = hex::encode(rand::random::<[u8; 16]>());
                    println!("No --secret given; using this access key: {k}");
                    k
                }
            };
            let listener =
                tokio::net::TcpListener::bind(&args.listen).await.with_context(|| format!("listening on {}", args.listen))?;
            println!("Reference seller listening at http://{}/ (KooGallery protocol)", listener.local_addr()?);
            souk_isv::reference::serve(listener, souk_isv::reference::Seller::koogallery(&key)).await?;
            Ok(())
        }
        Command::Isv(IsvCommand::Demo(args)) => {
            if args.protocol != "native" {
                anyhow::bail!("protocol {:?}: native or koogallery", args.protocol);
            }
            let secrets = if args.secret.is_empty() {
                let s = souk_isv::signature::Secret::generate();
                println!("No --secret given; using a new one: {}", s.expose());
                vec![s]
            } else {
                args.secret.iter().map(|s| souk_isv::signature::Secret::parse(s)).collect::<Result<Vec<_>, _>>()?
            };
            let listener =
                tokio::net::TcpListener::bind(&args.listen).await.with_context(|| format!("listening on {}", args.listen))?;
            println!("Reference seller listening at http://{}/ (native protocol)", listener.local_addr()?);
            souk_isv::reference::serve(listener, souk_isv::reference::Seller::new(secrets)).await?;
            Ok(())
        }
        Command::Isv(IsvCommand::Check(args)) => {
            let checks = match args.protocol.as_str() {
                "native" => {
                    souk_server::conformance::run(&args.endpoint, &souk_isv::signature::Secret::parse(&args.secret)?, None).await
                }
                "koogallery" => souk_server::conformance::run_koogallery(&args.endpoint, &args.secret, None).await,
                other => anyhow::bail!("protocol {other:?}: native or koogallery"),
            };
            if args.json {
                println!("{}", serde_json::to_string_pretty(&checks)?);
            } else {
                println!("{:<24} {:<6} {:>8}  detail", "check", "result", "ms");
                for c in &checks {
                    println!("{:<24} {:<6} {:>8}  {}", c.name, if c.passed { "pass" } else { "FAIL" }, c.latency_ms, c.detail);
                }
            }
            let failed = checks.iter().filter(|c| !c.passed).count();
            if failed > 0 {
                anyhow::bail!("{failed} of {} checks failed against {}", checks.len(), args.endpoint);
            }
            println!("All {} checks passed.", checks.len());
            Ok(())
        }
        Command::Admin(AdminCommand::CreateOperator(args)) => {
            let db = open(&config).await?;
            let state = state(db, &config);
            let email = Email::parse("email", &args.email).map_err(|e| anyhow::anyhow!(e))?;
            let password = Password::parse("password", &args.password).map_err(|e| anyhow::anyhow!(e))?;
            let site = Site::parse(&args.site)?;
            let default_name = email.as_str().split('@').next().unwrap_or("operator").to_owned();
            let name = Name::parse("name", args.name.as_deref().unwrap_or(&default_name), 80).map_err(|e| anyhow::anyhow!(e))?;
            let (account, created) = souk_server::identity::bootstrap_operator(&state, &email, &name, &password, site)
                .await
                .map_err(|e| anyhow::anyhow!(e.message()))?;
            if created {
                println!("Operator {} created", account.email);
            } else {
                println!("{} is now an operator (password unchanged)", account.email);
            }
            Ok(())
        }
    }
}
