//! The `souk` binary as a newcomer meets it: help on every command, demo data loaded twice,
//! an operator created, and `serve` answering on the address it prints.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn souk() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_souk"));
    // The tests choose every setting themselves.
    for var in [
        "SOUK_CONFIG",
        "SOUK_DATA_DIR",
        "SOUK_DATABASE_URL",
        "SOUK_LISTEN",
        "SOUK_LOG_FORMAT",
        "SOUK_ADMIN_PASSWORD",
        "SOUK_ISV_SECRET",
    ] {
        c.env_remove(var);
    }
    c
}

fn run(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(out.status.success(), "{c:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_command_has_help() {
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["migrate", "--help"],
        &["demo", "--help"],
        &["admin", "--help"],
        &["admin", "create-operator", "--help"],
        &["isv", "demo", "--help"],
        &["isv", "check", "--help"],
    ] {
        let text = run(souk().args(args));
        assert!(text.contains("Usage:"), "{args:?}: {text}");
    }
    assert!(run(souk().args(["serve", "--help"])).contains("--listen"));
}

#[test]
fn demo_twice_and_an_operator() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = run(souk().arg("--data-dir").arg(&data).arg("demo"));
    assert!(first.contains("operator@souk.test") && first.contains("souk-demo-password"), "{first}");
    assert!(!first.contains("already there"));
    assert!(data.join("souk.db").exists(), "the database is created in the data folder");
    let second = run(souk().arg("--data-dir").arg(&data).arg("demo"));
    assert_eq!(second.matches("already there").count(), 6, "{second}");

    let out = run(souk()
        .arg("--data-dir")
        .arg(&data)
        .args(["admin", "create-operator", "--email", "root@example.com"])
        .env("SOUK_ADMIN_PASSWORD", "a long operator password"));
    assert!(out.contains("created"), "{out}");
    let out = souk()
        .arg("--data-dir")
        .arg(&data)
        .args(["admin", "create-operator", "--email", "bad", "--password", "x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn bad_configuration_is_refused_with_a_reason() {
    let out = souk().args(["--database-url", "mysql://nope", "migrate"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("sqlite: or postgres://"));
    let out = souk().args(["serve", "--listen", "not-an-address"]).output().unwrap();
    assert!(!out.status.success());
}

#[test]
fn serve_answers_where_it_says() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("souk.toml");
    // The file names a port; the environment overrides it; the flag would override both.
    std::fs::write(&config, format!("listen = \"127.0.0.1:1\"\ndata_dir = {:?}\n", dir.path().join("d"))).unwrap();
    let mut child = souk()
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env("SOUK_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url =
        line.split_whitespace().find(|w| w.starts_with("http://")).unwrap_or_else(|| panic!("no URL in {line:?}")).to_owned();
    assert!(!url.contains(":1/"), "the environment beats the file: {url}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let health = rt.block_on(async {
        let addr = url.trim_start_matches("http://").trim_end_matches('/');
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
        let mut buf = String::new();
        stream.read_to_string(&mut buf).await.unwrap();
        buf
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.contains("\"ok\""));
    assert!(dir.path().join("d").join("souk.db").exists(), "data_dir came from the file");
}

/// A seller endpoint that answers 200 to anything without checking signatures.
fn careless_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 65536];
            let _ = stream.read(&mut buf);
            let body = r#"{"instance_id":"always-the-same"}"#;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}/")
}

#[test]
fn the_conformance_kit_passes_the_reference_seller_and_fails_a_careless_one() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let mut seller = souk()
        .args(["isv", "demo", "--listen", &format!("127.0.0.1:{port}"), "--secret", secret])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(seller.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.contains("listening"), "{line}");
    let endpoint = format!("http://127.0.0.1:{port}/");
    let out = souk().args(["isv", "check", "--endpoint", &endpoint, "--secret", secret]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    seller.kill().unwrap();
    seller.wait().unwrap();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("duplicate create") && text.contains("All 10 checks passed"), "{text}");

    let out = souk().args(["isv", "check", "--endpoint", &careless_endpoint(), "--secret", secret, "--json"]).output().unwrap();
    assert!(!out.status.success(), "a careless endpoint fails");
    let checks: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let failed: Vec<&str> =
        checks.as_array().unwrap().iter().filter(|c| c["passed"] == false).map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(failed, vec!["bad signature rejected", "old timestamp rejected"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("2 of 10 checks failed"));
}

#[test]
fn the_conformance_kit_speaks_koogallery_too() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let key = "souk-test-access-key";
    let mut seller = souk()
        .args(["isv", "demo", "--protocol", "koogallery", "--listen", &format!("127.0.0.1:{port}"), "--secret", key])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(seller.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.contains("KooGallery"), "{line}");
    let endpoint = format!("http://127.0.0.1:{port}/");
    let out =
        souk().args(["isv", "check", "--protocol", "koogallery", "--endpoint", &endpoint, "--secret", key]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let wrong_key = souk()
        .args(["isv", "check", "--protocol", "koogallery", "--endpoint", &endpoint, "--secret", "another-access-key", "--json"])
        .output()
        .unwrap();
    seller.kill().unwrap();
    seller.wait().unwrap();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("newInstance again") && text.contains("All 11 checks passed"), "{text}");
    assert!(!wrong_key.status.success(), "a seller holding another key refuses every call");

    let out = souk()
        .args(["isv", "check", "--protocol", "koogallery", "--endpoint", &careless_endpoint(), "--secret", key, "--json"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "an endpoint that does not speak KooGallery fails");
}
