//! Huawei API-gateway request signing (`SDK-HMAC-SHA256`), which KooGallery sellers' systems
//! use with an access key pair (AK/SK) when they call the marketplace's open APIs. Souk
//! accepts it on the same open APIs, so such a system works unchanged; a Rust seller can sign
//! with [`authorization`].
//!
//! The scheme, as Huawei's gateway SDKs implement it:
//! ```text
//! canonical request = METHOD \n URI \n QUERY \n HEADERS \n SIGNED-HEADERS \n hex(sha256(body))
//!   URI      every path segment percent-encoded, always ending in "/"
//!   QUERY    key=value pairs percent-encoded, sorted by key (then value), joined with "&"
//!   HEADERS  "name:value\n" for each signed header, lower-case names, trimmed values
//! string to sign    = "SDK-HMAC-SHA256" \n X-Sdk-Date \n hex(sha256(canonical request))
//! signature         = hex(HMAC-SHA256(SK, string to sign))
//! Authorization: SDK-HMAC-SHA256 Access=AK, SignedHeaders=host;x-sdk-date, Signature=…
//! ```
//! with `X-Sdk-Date` as `yyyyMMdd'T'HHmmss'Z'` (UTC). Percent-encoding leaves only
//! `A-Z a-z 0-9 - _ . ~` as they are.

use chrono::{DateTime, NaiveDateTime, Utc};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const ALGORITHM: &str = "SDK-HMAC-SHA256";
/// The `X-Sdk-Date` format.
pub const DATE_FORMAT: &str = "%Y%m%dT%H%M%SZ";
/// How far a request's date may be from the verifier's clock (the gateway's own limit).
pub const TOLERANCE_SECS: i64 = 15 * 60;

/// What is signed of a request: the path and query as sent (still percent-encoded), and the
/// headers by name.
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    #[error("the Authorization header is not `SDK-HMAC-SHA256 Access=…, SignedHeaders=…, Signature=…`")]
    Malformed,
    #[error("X-Sdk-Date is missing or not yyyyMMdd'T'HHmmss'Z'")]
    Date,
    #[error("X-Sdk-Date is more than 15 minutes from now")]
    Stale,
    #[error("a signed header is missing: {0}")]
    MissingHeader(String),
    #[error("signature does not match")]
    Mismatch,
}

/// The parts of an `Authorization: SDK-HMAC-SHA256 …` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub access: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

impl Authorization {
    pub fn parse(header: &str) -> Result<Self, GatewayError> {
        let rest = header.trim().strip_prefix(ALGORITHM).ok_or(GatewayError::Malformed)?;
        let (mut access, mut signed, mut signature) = (None, None, None);
        for part in rest.split(',') {
            let (k, v) = part.trim().split_once('=').ok_or(GatewayError::Malformed)?;
            match k.trim() {
                "Access" => access = Some(v.trim().to_owned()),
                "SignedHeaders" => signed = Some(v.trim().split(';').map(|h| h.trim().to_ascii_lowercase()).collect()),
                "Signature" => signature = Some(v.trim().to_owned()),
                _ => {}
            }
        }
        match (access, signed, signature) {
            (Some(access), Some(signed_headers), Some(signature)) if !access.is_empty() && !signature.is_empty() => {
                Ok(Self { access, signed_headers, signature })
            }
            _ => Err(GatewayError::Malformed),
        }
    }
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Undoes percent-encoding (`%XX` only: the gateway's SDKs send spaces as `%20`).
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn canonical_uri(path: &str) -> String {
    let mut uri = decode(path).split('/').map(encode).collect::<Vec<_>>().join("/");
    if !uri.ends_with('/') {
        uri.push('/');
    }
    uri
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (encode(&decode(k)), encode(&decode(v)))
        })
        .collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

/// The canonical request for `signed_headers` (lower-case names).
pub fn canonical_request(r: &Request<'_>, signed_headers: &[String]) -> Result<String, GatewayError> {
    let mut headers = String::new();
    for name in signed_headers {
        let value = r
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
            .ok_or_else(|| GatewayError::MissingHeader(name.clone()))?;
        headers.push_str(&format!("{name}:{value}\n"));
    }
    Ok(format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        r.method.to_ascii_uppercase(),
        canonical_uri(r.path),
        canonical_query(r.query),
        headers,
        signed_headers.join(";"),
        payload_hash(r),
    ))
}

/// The body's hash, or what the request says stands for it (`X-Sdk-Content-Sha256`, which
/// the SDKs set to `UNSIGNED-PAYLOAD` for bodies that are not JSON).
fn payload_hash(r: &Request<'_>) -> String {
    match header(r, "x-sdk-content-sha256") {
        Some(v) if !r.body.is_empty() => v.trim().to_owned(),
        _ => hex::encode(Sha256::digest(r.body)),
    }
}

fn signature(secret: &str, date: &str, canonical: &str) -> String {
    let to_sign = format!("{ALGORITHM}\n{date}\n{}", hex::encode(Sha256::digest(canonical.as_bytes())));
    hex::encode(crate::koogallery::hmac_sha256(secret.as_bytes(), to_sign.as_bytes()))
}

fn header<'a>(r: &'a Request<'_>, name: &str) -> Option<&'a str> {
    r.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// The `Authorization` value for a request that carries `host` and `x-sdk-date` (and any
/// other headers it wants signed, named in `signed_headers`).
pub fn authorization(access: &str, secret: &str, r: &Request<'_>, signed_headers: &[&str]) -> Result<String, GatewayError> {
    let mut names: Vec<String> = signed_headers.iter().map(|h| h.to_ascii_lowercase()).collect();
    names.sort();
    let date = header(r, "x-sdk-date").ok_or(GatewayError::Date)?;
    let sig = signature(secret, date, &canonical_request(r, &names)?);
    Ok(format!("{ALGORITHM} Access={access}, SignedHeaders={}, Signature={sig}", names.join(";")))
}

/// Checks a request's signature with the access key's secret, its date within
/// [`TOLERANCE_SECS`] of `now`. `x-sdk-date` must be among the signed headers, so an old
/// request cannot be replayed with a new date.
pub fn verify(auth: &Authorization, secret: &str, r: &Request<'_>, now: DateTime<Utc>) -> Result<(), GatewayError> {
    if !auth.signed_headers.iter().any(|h| h == "x-sdk-date") {
        return Err(GatewayError::MissingHeader("x-sdk-date".into()));
    }
    let date = header(r, "x-sdk-date").ok_or(GatewayError::Date)?;
    let at = NaiveDateTime::parse_from_str(date, DATE_FORMAT).map_err(|_| GatewayError::Date)?.and_utc();
    if (now - at).num_seconds().abs() > TOLERANCE_SECS {
        return Err(GatewayError::Stale);
    }
    let expected = signature(secret, date, &canonical_request(r, &auth.signed_headers)?);
    if expected.as_bytes().ct_eq(auth.signature.to_ascii_lowercase().as_bytes()).into() {
        Ok(())
    } else {
        Err(GatewayError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request<'a>(headers: &'a [(String, String)], query: &'a str) -> Request<'a> {
        Request { method: "GET", path: "/api/mkp-openapi-public/global/v1/order/query", query, headers, body: b"" }
    }

    #[test]
    fn the_canonical_request_follows_the_gateway_sdks() {
        let headers =
            vec![("Host".to_owned(), "souk.example".to_owned()), ("X-Sdk-Date".to_owned(), "20260302T090000Z".to_owned())];
        let c = canonical_request(
            &request(&headers, "orderLineId=A%20B-000001&orderId=A%20B"),
            &["host".into(), "x-sdk-date".into()],
        )
        .unwrap();
        assert_eq!(
            c,
            "GET\n/api/mkp-openapi-public/global/v1/order/query/\norderId=A%20B&orderLineId=A%20B-000001\n\
             host:souk.example\nx-sdk-date:20260302T090000Z\n\nhost;x-sdk-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    /// Vectors made with the `Signer` of Huawei Cloud's Python SDK (huaweicloudsdkcore 3.1.219,
    /// `huaweicloudsdkcore/signer/signer.py`), AK `SOUKTESTAK0123456789`, SK
    /// `souk-test-secret-key`, host `souk.example`, X-Sdk-Date `20260302T090000Z`.
    #[test]
    fn signatures_match_huaweis_own_sdk() {
        let now = DateTime::parse_from_rfc3339("2026-03-02T09:00:00Z").unwrap().to_utc();
        let h = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<Vec<_>>();
        let get_headers = h(&[("Host", "souk.example"), ("X-Sdk-Date", "20260302T090000Z")]);
        let get = Request {
            method: "GET",
            path: "/api/mkp-openapi-public/global/v1/order/query",
            query: "orderId=MOCKPERIODYEARNEW&orderLineId=MOCKPERIODYEARNEW-000001",
            headers: &get_headers,
            body: b"",
        };
        let sdk = "SDK-HMAC-SHA256 Access=SOUKTESTAK0123456789, SignedHeaders=host;x-sdk-date, \
                   Signature=ad0391a536b4ac993d205c1d4b0ff3da35315e8f9d271938bfa5488b7cb331d7";
        assert_eq!(authorization("SOUKTESTAK0123456789", "souk-test-secret-key", &get, &["host", "x-sdk-date"]).unwrap(), sdk);
        verify(&Authorization::parse(sdk).unwrap(), "souk-test-secret-key", &get, now).unwrap();
        let post_headers =
            h(&[("X-Sdk-Date", "20260302T090000Z"), ("Content-Type", "application/json"), ("Host", "souk.example")]);
        let post = Request {
            method: "POST",
            path: "/api/mkp-openapi-public/global/v1/license/activate",
            query: "",
            headers: &post_headers,
            body: br#"{"license":"ABC"}"#,
        };
        let sdk = "SDK-HMAC-SHA256 Access=SOUKTESTAK0123456789, SignedHeaders=content-type;host;x-sdk-date, \
                   Signature=21bddaec5e5a868b0b800f912e1d7e559d86001f83354fb6564915ac8e906bad";
        verify(&Authorization::parse(sdk).unwrap(), "souk-test-secret-key", &post, now).unwrap();
    }

    #[test]
    fn a_signed_request_verifies_and_a_changed_one_does_not() {
        let now = DateTime::parse_from_rfc3339("2026-03-02T09:00:00Z").unwrap().to_utc();
        let headers =
            vec![("host".to_owned(), "souk.example".to_owned()), ("x-sdk-date".to_owned(), "20260302T090100Z".to_owned())];
        let r = request(&headers, "orderId=MOCKPERIODYEARNEW");
        let value = authorization("AK1", "sk-secret", &r, &["host", "x-sdk-date"]).unwrap();
        let auth = Authorization::parse(&value).unwrap();
        assert_eq!(auth.access, "AK1");
        verify(&auth, "sk-secret", &r, now).unwrap();
        assert_eq!(verify(&auth, "other", &r, now), Err(GatewayError::Mismatch));
        let tampered = request(&headers, "orderId=MOCKONETIMENEW");
        assert_eq!(verify(&auth, "sk-secret", &tampered, now), Err(GatewayError::Mismatch));
        assert_eq!(verify(&auth, "sk-secret", &r, now + chrono::Duration::minutes(20)), Err(GatewayError::Stale));
        let undated = Authorization { signed_headers: vec!["host".into()], ..auth };
        assert!(matches!(verify(&undated, "sk-secret", &r, now), Err(GatewayError::MissingHeader(_))));
        assert_eq!(Authorization::parse("Bearer souk_sk_x"), Err(GatewayError::Malformed));
    }
}
