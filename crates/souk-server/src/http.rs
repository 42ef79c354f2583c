//! The router: API, OpenAPI document and viewer, pages, assets, health and metrics, and
//! the layers every request passes (request id, tracing, metrics, body limit, idempotency).

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::error::Error;
use crate::{AppState, api, idempotency, pages};

/// The OpenAPI document, generated from the handlers.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, doc) =
        OpenApiRouter::<AppState>::with_openapi(api::ApiDoc::openapi()).nest("/api/v1", api::router()).split_for_parts();
    doc
}

/// The served document: the generated one, completed with what every operation shares, which
/// the handlers' annotations leave out (found by schemathesis, scripts/schemathesis.sh):
/// - path parameters the extractors read (`{org_id}` is read by `OrgScope`, not a `Path`);
/// - errors are `application/problem+json`, not `application/json`;
/// - any operation may answer with a problem (401 without credentials, 415 without a JSON
///   body, 422, 429 …): a `default` response says so, beside the statuses each one lists.
pub fn openapi_json_document(doc: &utoipa::openapi::OpenApi) -> String {
    let mut v = serde_json::to_value(doc).unwrap_or_default();
    complete(&mut v);
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

fn complete(doc: &mut serde_json::Value) {
    use serde_json::{Value, json};
    let problem = json!({"$ref": "#/components/schemas/Problem"});
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else { return };
    for (path, item) in paths.iter_mut() {
        let names: Vec<&str> = path.split('{').skip(1).filter_map(|rest| rest.split_once('}').map(|(name, _)| name)).collect();
        let Some(item) = item.as_object_mut() else { continue };
        for (method, op) in item.iter_mut() {
            if !matches!(method.as_str(), "get" | "put" | "post" | "delete" | "patch") {
                continue;
            }
            let Some(op) = op.as_object_mut() else { continue };
            let params = op.entry("parameters").or_insert_with(|| json!([]));
            if let Some(list) = params.as_array_mut() {
                for name in &names {
                    let declared = list.iter().any(|p| p["in"] == "path" && p["name"] == *name);
                    if !declared {
                        list.push(json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}));
                    }
                }
            }
            let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else { continue };
            for response in responses.values_mut() {
                let Some(content) = response.get_mut("content").and_then(Value::as_object_mut) else { continue };
                if content.get("application/json").is_some_and(|c| c["schema"] == problem)
                    && let Some(c) = content.remove("application/json")
                {
                    content.insert("application/problem+json".into(), c);
                }
            }
            responses.entry("default").or_insert_with(|| {
                json!({
                    "description": "An error, as an RFC 9457 problem with a stable `code`",
                    "content": {"application/problem+json": {"schema": problem}}
                })
            });
        }
    }
}

pub fn app(state: AppState) -> Router {
    let (api_router, doc) = OpenApiRouter::with_openapi(api::ApiDoc::openapi()).nest("/api/v1", api::router()).split_for_parts();
    let doc_json = Arc::new(openapi_json_document(&doc));
    let x_request_id = axum::http::HeaderName::from_static("x-request-id");

    Router::new()
        .merge(api_router)
        .route("/api/openapi.json", get(move || openapi_json(doc_json.clone())))
        .route("/api/docs", get(docs))
        .route("/assets/{*path}", get(asset))
        .route("/healthz", get(healthz))
        .route("/livez", get(livez))
        .route("/api/mkp-openapi-public/global/v1/order/query", get(crate::koogallery::order_query))
        .route("/api/mkp-openapi-public/global/v1/license/activate", axum::routing::post(crate::koogallery::license_activate))
        .route("/api/mkp-openapi-public/global/v1/license/heartbeat", axum::routing::post(crate::koogallery::license_heartbeat))
        .route(
            "/api/mkp-openapi-public/global/v2/license/heartbeat",
            axum::routing::post(crate::koogallery::license_heartbeat_batch),
        )
        .route("/metrics", get(metrics_endpoint))
        .merge(pages::router())
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), idempotency::layer))
        .layer(DefaultBodyLimit::max(idempotency::MAX_BODY))
        .layer(middleware::from_fn(refuse_oversize))
        .layer(middleware::from_fn(track_metrics))
        .layer(CatchPanicLayer::custom(|_| Error::Internal(anyhow::anyhow!("handler panicked")).into_response()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let rid = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %rid)
                })
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid))
        .with_state(state)
}

async fn openapi_json(doc: Arc<String>) -> Response {
    let mut res = doc.as_str().to_owned().into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

async fn docs() -> Html<&'static str> {
    Html(include_str!("../assets/docs.html"))
}

async fn asset(axum::extract::Path(path): axum::extract::Path<String>) -> Response {
    let (body, ct): (&'static [u8], &str) = match path.as_str() {
        "souk.css" => (include_bytes!("../assets/souk.css"), "text/css; charset=utf-8"),
        "souk.js" => (include_bytes!("../assets/souk.js"), "text/javascript; charset=utf-8"),
        "swagger-ui/swagger-ui-bundle.js" => {
            (include_bytes!("../assets/vendor/swagger-ui/swagger-ui-bundle.js"), "text/javascript; charset=utf-8")
        }
        "swagger-ui/swagger-ui.css" => (include_bytes!("../assets/vendor/swagger-ui/swagger-ui.css"), "text/css; charset=utf-8"),
        _ => return (StatusCode::NOT_FOUND, "not found").into_response(),
    };
    let mut res = body.into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap_or(HeaderValue::from_static("application/octet-stream")));
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    res
}

/// The process answers (no database call): for liveness probes, and the benchmarks' bare endpoint.
async fn livez() -> &'static str {
    "ok"
}

async fn healthz(State(state): State<AppState>) -> Response {
    match state.db.ping().await {
        Ok(()) => Json(serde_json::json!({ "status": "ok" })).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check: database unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({ "status": "database unreachable" }))).into_response()
        }
    }
}

fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        // Another recorder may already be installed (a test harness); then we keep our own
        // handle without installing it globally.
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

async fn metrics_endpoint(State(state): State<AppState>) -> Response {
    let handle = prometheus();
    if let Ok(counts) = souk_store::outbox::counts(&mut state.db.clone()).await {
        for (topic, status, n) in counts {
            metrics::gauge!("souk_outbox_events", "topic" => topic, "status" => status).set(n as f64);
        }
    }
    let mut res = handle.render().into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    res
}

async fn track_metrics(req: Request, next: Next) -> Response {
    prometheus();
    let start = Instant::now();
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    metrics::counter!("souk_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("souk_http_request_duration_seconds", "method" => method, "route" => route)
        .record(start.elapsed().as_secs_f64());
    res
}

/// Past this, an oversize body is cut off rather than drained.
const DRAIN_LIMIT: usize = 32 * 1024 * 1024;

/// Refuses a body whose declared length is over every limit before any handler reads it,
/// so an oversize request gets 413 whatever else is wrong with it.
async fn refuse_oversize(req: Request, next: Next) -> Response {
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > idempotency::MAX_BODY) {
        // Read (and drop) a bounded amount first: a client still sending its body when the
        // connection closes sees a broken pipe instead of this answer.
        let _ = axum::body::to_bytes(req.into_body(), DRAIN_LIMIT).await;
        return crate::extract::payload_too_large().into_response();
    }
    next.run(req).await
}

fn is_api(uri: &Uri) -> bool {
    uri.path().starts_with("/api/")
}

async fn fallback(State(state): State<AppState>, uri: Uri, req: Request) -> Response {
    if is_api(&uri) {
        return Error::new(StatusCode::NOT_FOUND, "not_found", format!("no endpoint at {}", uri.path())).into_response();
    }
    pages::not_found(&state, req).await
}

async fn method_not_allowed(uri: Uri) -> Response {
    Error::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", format!("{} does not accept this method", uri.path()))
        .into_response()
}
