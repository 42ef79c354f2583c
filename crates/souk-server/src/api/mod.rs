//! The JSON API under `/api/v1`, documented by the OpenAPI document generated from these
//! handlers (`/api/openapi.json`).

mod admin;
mod catalog;
mod commerce;
mod fulfillment;
mod identity;
mod messages;
mod orgs;
pub(crate) mod storefront;
pub(crate) mod verification;
mod wallet;

use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::openapi::security::{ApiKey as ApiKeyScheme, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{Error, Problem};
pub(crate) use verification::multipart_error;

#[derive(OpenApi)]
#[openapi(
    info(title = "Souk API", description = "Souk, the self-hostable cloud marketplace. Errors are RFC 9457 problem+json with a stable `code`. POST requests that create something accept an `Idempotency-Key` header."),
    modifiers(&SecuritySchemes),
    components(schemas(Problem)),
    tags(
        (name = "identity", description = "Accounts, sessions, passwords"),
        (name = "orgs", description = "Organizations, members, API keys"),
        (name = "verification", description = "Real-name verification"),
        (name = "catalog", description = "Seller onboarding, products, plans, drafts and applications"),
        (name = "storefront", description = "What buyers browse and search"),
        (name = "billing", description = "Wallets, top-ups, orders, subscriptions, servers, bills"),
        (name = "fulfillment", description = "Sellers' integrations, delivery log, redelivery (docs/PROTOCOL.md)"),
        (name = "admin", description = "Platform staff: review queues, audit log, staff roles"),
        (name = "messages", description = "The message center: inbox, email and SMS log"),
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("souk_sk_…").build()),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKeyScheme::Cookie(ApiKeyValue::new(crate::auth::SESSION_COOKIE))),
        );
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(identity::sign_up))
        .routes(routes!(identity::sign_in))
        .routes(routes!(identity::sign_out))
        .routes(routes!(identity::me))
        .routes(routes!(messages::inbox))
        .routes(routes!(messages::read))
        .routes(routes!(messages::read_all))
        .routes(routes!(messages::sends))
        .routes(routes!(messages::get_settings))
        .routes(routes!(messages::put_settings))
        .routes(routes!(messages::list_contacts, messages::add_contact))
        .routes(routes!(messages::confirm_contact))
        .routes(routes!(messages::remove_contact))
        .routes(routes!(messages::get_phone, messages::put_phone, messages::delete_phone))
        .routes(routes!(messages::confirm_phone))
        .routes(routes!(identity::change_password))
        .routes(routes!(orgs::list_orgs, orgs::create_org))
        .routes(routes!(orgs::get_org))
        .routes(routes!(orgs::list_members, orgs::add_member))
        .routes(routes!(orgs::change_member, orgs::remove_member))
        .routes(routes!(orgs::list_api_keys, orgs::create_api_key))
        .routes(routes!(orgs::revoke_api_key))
        .routes(routes!(verification::upload))
        .routes(routes!(verification::download))
        .routes(routes!(verification::list_verifications, verification::submit))
        .routes(routes!(admin::verification_queue))
        .routes(routes!(admin::get_verification))
        .routes(routes!(admin::decide))
        .routes(routes!(admin::document))
        .routes(routes!(admin::audit_log))
        .routes(routes!(admin::set_staff_role))
        .routes(routes!(catalog::current_agreements))
        .routes(routes!(catalog::publish_agreement))
        .routes(routes!(catalog::seller_standing))
        .routes(routes!(catalog::accept_agreement))
        .routes(routes!(catalog::apply_to_sell))
        .routes(routes!(catalog::list_sellers))
        .routes(routes!(catalog::decide_seller))
        .routes(routes!(catalog::enforce))
        .routes(routes!(catalog::set_calendar_day))
        .routes(routes!(catalog::list_products, catalog::create_product))
        .routes(routes!(catalog::get_product))
        .routes(routes!(catalog::save_draft))
        .routes(routes!(catalog::submit))
        .routes(routes!(catalog::withdraw))
        .routes(routes!(catalog::list_product))
        .routes(routes!(catalog::delist_product))
        .routes(routes!(catalog::applications))
        .routes(routes!(catalog::review_queue))
        .routes(routes!(catalog::start_review))
        .routes(routes!(catalog::decide))
        .routes(routes!(catalog::get_shop))
        .routes(routes!(catalog::save_shop_draft))
        .routes(routes!(catalog::submit_shop))
        .routes(routes!(catalog::withdraw_shop))
        .routes(routes!(catalog::shop_queue))
        .routes(routes!(catalog::decide_shop))
        .routes(routes!(wallet::get_wallet))
        .routes(routes!(wallet::top_up))
        .routes(routes!(wallet::list_top_ups, wallet::start_top_up))
        .routes(routes!(wallet::sandbox_pay))
        .routes(routes!(commerce::quote))
        .routes(routes!(commerce::list_orders, commerce::place_order))
        .routes(routes!(commerce::list_sales))
        .routes(routes!(commerce::list_subscriptions))
        .routes(routes!(commerce::get_subscription))
        .routes(routes!(commerce::renew))
        .routes(routes!(commerce::change_plan))
        .routes(routes!(commerce::refund_preview))
        .routes(routes!(commerce::unsubscribe))
        .routes(routes!(commerce::fulfilled))
        .routes(routes!(commerce::start_trial))
        .routes(routes!(commerce::auto_renew))
        .routes(routes!(commerce::list_servers))
        .routes(routes!(commerce::bills))
        .routes(routes!(fulfillment::get_integration, fulfillment::configure))
        .routes(routes!(fulfillment::rotate))
        .routes(routes!(fulfillment::finish_rotation))
        .routes(routes!(fulfillment::log))
        .routes(routes!(fulfillment::redeliver))
        .routes(routes!(fulfillment::get_pool, fulfillment::upload_pool))
        .routes(routes!(fulfillment::get_import))
        .routes(routes!(fulfillment::check_license))
        .routes(routes!(fulfillment::list_app_users))
        .routes(routes!(fulfillment::failing_endpoints))
        .routes(routes!(fulfillment::grant_app_user, fulfillment::revoke_app_user))
        .routes(routes!(fulfillment::activate_license))
        .routes(routes!(fulfillment::list_gateway_keys, fulfillment::create_gateway_key))
        .routes(routes!(fulfillment::revoke_gateway_key))
        .routes(routes!(commerce::bill_csv))
        .routes(routes!(commerce::list_test_coupons, commerce::issue_test_coupon))
        .routes(routes!(commerce::list_coupons, commerce::create_coupon))
        .routes(routes!(storefront::categories))
        .routes(routes!(storefront::search))
        .routes(routes!(storefront::product))
}

/// A `status` filter.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApiQueryStatus {
    pub status: Option<String>,
}

/// Query parameters of cursor-paginated lists.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Items per page, 1 to 100 (default 50).
    pub limit: Option<u32>,
}

impl PageQuery {
    pub fn limit(&self) -> Result<u32, Error> {
        match self.limit {
            None => Ok(50),
            Some(n @ 1..=100) => Ok(n),
            Some(_) => Err(Error::bad_request("invalid_query", "limit must be between 1 and 100")),
        }
    }

    /// The id the previous page ended at.
    pub fn after(&self) -> Result<Option<String>, Error> {
        self.cursor
            .as_deref()
            .map(|c| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(c)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| Error::bad_request("invalid_cursor", "the cursor is not one this API issued"))
            })
            .transpose()
    }
}

/// The cursor for the page after one ending at `last_id`, if the page was full.
pub fn next_cursor(last_id: Option<&str>, len: usize, limit: u32) -> Option<String> {
    if len < limit as usize {
        return None;
    }
    last_id.map(|id| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountOut {
    pub id: String,
    pub email: String,
    pub name: String,
    /// `cn` or `intl`.
    pub site: String,
    /// `en` or `zh-CN`.
    pub lang: String,
    /// `operator`, `supervisor` or null.
    pub staff_role: Option<String>,
    pub personal_org_id: String,
    pub created_at: DateTime<Utc>,
}

impl From<&souk_store::accounts::Account> for AccountOut {
    fn from(a: &souk_store::accounts::Account) -> Self {
        Self {
            id: a.id.to_string(),
            email: a.email.clone(),
            name: a.name.clone(),
            site: a.site.as_str().to_owned(),
            lang: a.lang.code().to_owned(),
            staff_role: a.staff_role.map(|r| r.as_str().to_owned()),
            personal_org_id: a.personal_org_id.to_string(),
            created_at: a.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrgOut {
    pub id: String,
    pub name: String,
    /// `personal` or `enterprise`.
    pub kind: String,
    pub site: String,
    pub currency: String,
    pub is_buyer: bool,
    pub is_seller: bool,
    pub is_reseller: bool,
    /// `unverified`, `pending`, `verified` or `rejected`.
    pub verification_status: String,
    pub verified_name: Option<String>,
    pub verified_at: Option<DateTime<Utc>>,
    /// The caller's role in this organization.
    pub role: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl OrgOut {
    pub fn new(o: &souk_store::orgs::Org, role: Option<souk_core::identity::OrgRole>) -> Self {
        Self {
            id: o.id.to_string(),
            name: o.name.clone(),
            kind: o.kind.as_str().to_owned(),
            site: o.site.as_str().to_owned(),
            currency: o.site.currency().code().to_owned(),
            is_buyer: o.is_buyer,
            is_seller: o.is_seller,
            is_reseller: o.is_reseller,
            verification_status: o.verification_status.clone(),
            verified_name: o.verified_name.clone(),
            verified_at: o.verified_at,
            role: role.map(|r| r.as_str().to_owned()),
            created_at: o.created_at,
        }
    }
}
