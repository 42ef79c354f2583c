//! The Medusa peer of `souk bench purchase`: Medusa v2's place-order flow over its store API,
//! at the same concurrency and for the same time as Souk's purchases, in the same run. The
//! Medusa server is started by `scripts/peers/medusa.sh` from the hand-written project in
//! `scripts/peers/medusa/`, whose seed prints the ids this needs.
//!
//! One order, as a storefront does it: a cart (region, email, shipping address), a line item,
//! a shipping method, a payment collection, a payment session with the system provider, and
//! completing the cart, which places the order. Its latency runs from the first request to the
//! answer that carries the order.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::{Value, json};

/// What the seed script printed (after `SOUK_BENCH_MEDUSA `).
#[derive(Debug, Clone, Deserialize)]
pub struct Seed {
    pub publishable_key: String,
    pub region_id: String,
    pub variant_id: String,
    pub shipping_option_id: String,
}

/// A running Medusa server and what was seeded in it.
#[derive(Debug, Clone)]
pub struct Medusa {
    pub base: String,
    pub seed: Seed,
    /// Its `node` process, for CPU time and memory (with any workers it forked; optional).
    pub pid: Option<u32>,
}

/// One level of Medusa orders: throughput and latency, and the server's CPU per order and
/// memory when its pid is known.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub orders: usize,
    pub orders_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub cpu_ms_per_order: Option<f64>,
    pub rss_mb: Option<f64>,
}

impl Medusa {
    pub fn new(base: &str, seed_json: &str, pid: Option<u32>) -> anyhow::Result<Self> {
        let seed = serde_json::from_str(seed_json).context("--medusa-seed: the JSON the seed script printed")?;
        Ok(Self { base: base.trim_end_matches('/').to_owned(), seed, pid })
    }

    async fn post(&self, client: &reqwest::Client, path: &str, body: Value) -> anyhow::Result<Value> {
        let res = client
            .post(format!("{}{path}", self.base))
            .header("x-publishable-api-key", &self.seed.publishable_key)
            .json(&body)
            .send()
            .await?;
        let status = res.status();
        let text = res.text().await?;
        if !status.is_success() {
            bail!("Medusa POST {path}: {status}: {text}");
        }
        Ok(serde_json::from_str(&text)?)
    }

    /// One guest order, cart to completed; its latency in milliseconds.
    pub async fn place_order(&self, client: &reqwest::Client, n: usize) -> anyhow::Result<f64> {
        let t = Instant::now();
        let s = &self.seed;
        let cart = self
            .post(
                client,
                "/store/carts",
                json!({
                    "region_id": s.region_id,
                    "email": format!("bench-{n}@souk.test"),
                    "shipping_address": {
                        "first_name": "Bench", "last_name": "Buyer", "address_1": "1 Bench Street",
                        "city": "Copenhagen", "country_code": "dk", "postal_code": "1000"
                    }
                }),
            )
            .await?;
        let cart = cart["cart"]["id"].as_str().context("Medusa: the cart's id")?.to_owned();
        self.post(client, &format!("/store/carts/{cart}/line-items"), json!({"variant_id": s.variant_id, "quantity": 1})).await?;
        self.post(client, &format!("/store/carts/{cart}/shipping-methods"), json!({"option_id": s.shipping_option_id})).await?;
        let pc = self.post(client, "/store/payment-collections", json!({"cart_id": cart})).await?;
        let pc = pc["payment_collection"]["id"].as_str().context("Medusa: the payment collection's id")?;
        self.post(
            client,
            &format!("/store/payment-collections/{pc}/payment-sessions"),
            json!({"provider_id": "pp_system_default"}),
        )
        .await?;
        let done = self.post(client, &format!("/store/carts/{cart}/complete"), json!({})).await?;
        if done["type"] != "order" {
            bail!("Medusa: completing cart {cart} did not place an order: {done}");
        }
        Ok(t.elapsed().as_secs_f64() * 1000.0)
    }

    /// Waits (up to a minute) until the Medusa server is idle: what it does after answering
    /// (its event subscribers, the workflow engine) must not run into Souk's next run. Known
    /// only with its pid; returns how long it waited.
    pub async fn settle(&self) -> anyhow::Result<Duration> {
        let start = Instant::now();
        let Some(pid) = self.pid else { return Ok(Duration::ZERO) };
        while start.elapsed() < Duration::from_secs(60) {
            let before = super::limits::tree_cpu_ms(pid)?;
            tokio::time::sleep(Duration::from_millis(500)).await;
            // Under 5% of a core over half a second.
            if super::limits::tree_cpu_ms(pid)? - before < 25.0 {
                break;
            }
        }
        Ok(start.elapsed())
    }

    /// `c` storefront clients placing orders for `length`.
    pub async fn level(&self, c: usize, length: Duration) -> anyhow::Result<RunResult> {
        let cpu_before = self.pid.map(super::limits::tree_cpu_ms).transpose()?;
        let start = Instant::now();
        let deadline = start + length;
        let mut tasks = Vec::new();
        for i in 0..c {
            let medusa = self.clone();
            tasks.push(tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut lat = Vec::new();
                while Instant::now() < deadline {
                    lat.push(medusa.place_order(&client, i).await?);
                }
                anyhow::Ok(lat)
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await??);
        }
        let elapsed = start.elapsed().as_secs_f64();
        let n = all.len();
        let cpu_ms_per_order = match (self.pid, cpu_before) {
            (Some(pid), Some(before)) if n > 0 => Some((super::limits::tree_cpu_ms(pid)? - before) / n as f64),
            _ => None,
        };
        Ok(RunResult {
            orders: n,
            orders_per_s: n as f64 / elapsed,
            p50_ms: super::percentile(&mut all, 0.5),
            p99_ms: super::percentile(&mut all, 0.99),
            cpu_ms_per_order,
            rss_mb: self.pid.map(super::limits::tree_rss_mb).transpose()?,
        })
    }
}
