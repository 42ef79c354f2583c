//! The catalog's rules: what a product and its plans must contain before they can be sold,
//! and the review lifecycle every seller edit goes through (seed §3, §14).
//!
//! A seller edits a draft freely; a draft is checked in full only when submitted, so a
//! half-written product can be saved. Every problem is reported at once, each under the
//! path of the field it concerns (`plans[1].prices`).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::identity::{Email, FieldError, Phone, string_enum};
use crate::money::Money;
use crate::site::Site;

string_enum!(
    /// SaaS (provisioned through the seller's system), machine image, license codes, or a
    /// service delivered by people.
    ProductKind { Saas => "saas", Image => "image", License => "license", Service => "service" }
);

string_enum!(
    /// The state of one submitted revision ("my applications").
    RevisionState {
        Draft => "draft",
        Submitted => "submitted",
        InReview => "in_review",
        Approved => "approved",
        Rejected => "rejected",
        Withdrawn => "withdrawn",
    }
);

string_enum!(
    Period { Month => "month", Year => "year" }
);

/// A review step that the current state does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a {from} revision cannot be {action}")]
pub struct IllegalTransition {
    pub from: RevisionState,
    pub action: &'static str,
}

impl RevisionState {
    /// Submitting freezes a draft.
    pub fn submit(self) -> Result<Self, IllegalTransition> {
        match self {
            Self::Draft => Ok(Self::Submitted),
            from => Err(IllegalTransition { from, action: "submitted" }),
        }
    }

    /// An operator opens a submitted revision.
    pub fn start_review(self) -> Result<Self, IllegalTransition> {
        match self {
            Self::Submitted | Self::InReview => Ok(Self::InReview),
            from => Err(IllegalTransition { from, action: "taken into review" }),
        }
    }

    pub fn decide(self, approve: bool) -> Result<Self, IllegalTransition> {
        match self {
            Self::Submitted | Self::InReview => Ok(if approve { Self::Approved } else { Self::Rejected }),
            from => Err(IllegalTransition { from, action: "decided" }),
        }
    }

    /// The seller takes back a draft or a submission not yet decided.
    pub fn withdraw(self) -> Result<Self, IllegalTransition> {
        match self {
            Self::Draft | Self::Submitted | Self::InReview => Ok(Self::Withdrawn),
            from => Err(IllegalTransition { from, action: "withdrawn" }),
        }
    }

    /// Whether the seller may still change it.
    pub fn is_editable(self) -> bool {
        self == Self::Draft
    }

    /// Waiting for an operator.
    pub fn is_pending_review(self) -> bool {
        matches!(self, Self::Submitted | Self::InReview)
    }
}

/// A price in one site's currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SitePrice {
    pub site: Site,
    /// Minor units of the site's currency.
    pub amount_minor: i64,
}

impl SitePrice {
    pub fn money(&self) -> Money {
        Money::new(self.amount_minor, self.site.currency())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatRange {
    pub min: u32,
    pub max: u32,
}

/// A pay-per-use dimension, billed later from metering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dimension {
    pub key: String,
    /// What one unit is: "GB-month", "API call", "vCPU-hour".
    pub unit: String,
    pub prices: Vec<SitePrice>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Billing {
    /// A price per period; with `seats`, per seat per period.
    Periodic {
        period: Period,
        seats: Option<SeatRange>,
    },
    OneTime,
    PayPerUse {
        dimensions: Vec<Dimension>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trial {
    pub days: u32,
    /// Only enterprise-verified buyers may start it (seed §9).
    #[serde(default)]
    pub enterprise_only: bool,
}

/// A plan (SKU) as the seller writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Stable once the plan is created; orders refer to it.
    #[serde(default)]
    pub id: Option<String>,
    /// The seller's code for the plan, unique within the product.
    pub code: String,
    pub name: String,
    pub billing: Billing,
    /// Periodic and one-time plans: the price in each site the product is sold on.
    #[serde(default)]
    pub prices: Vec<SitePrice>,
    #[serde(default)]
    pub trial: Option<Trial>,
}

/// Machine-image specifics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageSpec {
    pub image_ref: String,
    pub flavors: Vec<String>,
    pub regions: Vec<String>,
    pub min_disk_gb: u32,
}

/// Everything a seller edits about a product. Stored as a draft as it is; checked with
/// [`ProductContent::check`] before it is submitted.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductContent {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub summary: String,
    /// Markdown; rendered through a sanitizer.
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub support_email: Option<String>,
    #[serde(default)]
    pub support_phone: Option<String>,
    #[serde(default)]
    pub support_url: Option<String>,
    /// The sites the product is sold on.
    #[serde(default)]
    pub sites: Vec<Site>,
    #[serde(default)]
    pub image: Option<ImageSpec>,
    #[serde(default)]
    pub plans: Vec<Plan>,
    /// Upload id of the logo (PNG or JPEG).
    #[serde(default)]
    pub logo: Option<String>,
    /// Upload ids of screenshots (PNG or JPEG), in display order.
    #[serde(default)]
    pub screenshots: Vec<String>,
    /// Days an expired subscription keeps its data (service suspended) before it is
    /// released; the marketplace default when not set.
    #[serde(default)]
    pub grace_days: Option<u32>,
    /// Days after a purchase in which it is refunded in full for any reason (0: never);
    /// the marketplace default when not set.
    #[serde(default)]
    pub no_reason_days: Option<u32>,
}

pub const MAX_SCREENSHOTS: usize = 6;
pub const MAX_NAME: usize = 80;
pub const MAX_SUMMARY: usize = 200;
pub const MAX_DESCRIPTION: usize = 20_000;
pub const MAX_TAGS: usize = 10;
pub const MAX_PLANS: usize = 20;
pub const TRIAL_DAYS: std::ops::RangeInclusive<u32> = 3..=180;
/// The grace periods a seller may choose.
pub const GRACE_DAYS: std::ops::RangeInclusive<u32> = 1..=60;
/// The no-reason refund windows a seller may choose.
pub const NO_REASON_DAYS: std::ops::RangeInclusive<u32> = 0..=15;
/// The marketplace's defaults (seed §12): 15 days of grace, 5 days to return for any reason.
pub const DEFAULT_GRACE_DAYS: u32 = 15;
pub const DEFAULT_NO_REASON_DAYS: u32 = 5;

fn text(errors: &mut Vec<FieldError>, field: &'static str, value: &str, max: usize) {
    let n = value.trim().chars().count();
    if n == 0 {
        errors.push(FieldError::new(field, "must not be empty"));
    } else if n > max {
        errors.push(FieldError::new(field, format!("must be at most {max} characters")));
    } else if value.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') {
        errors.push(FieldError::new(field, "must not contain control characters"));
    }
}

fn slug_ok(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl ProductContent {
    /// Normalises what can be normalised without changing meaning: trims text, lower-cases
    /// and de-duplicates tags, sorts sites.
    pub fn normalise(&mut self) {
        self.name = self.name.trim().to_owned();
        self.summary = self.summary.trim().to_owned();
        self.category = self.category.trim().to_owned();
        let mut seen = BTreeSet::new();
        self.tags =
            self.tags.iter().map(|t| t.trim().to_lowercase()).filter(|t| !t.is_empty() && seen.insert(t.clone())).collect();
        self.sites.sort_by_key(|s| s.as_str());
        self.sites.dedup();
        for p in &mut self.plans {
            p.code = p.code.trim().to_lowercase();
            p.name = p.name.trim().to_owned();
        }
    }

    /// Whether a draft may be saved: only sizes are checked, so storage stays bounded.
    pub fn check_draft(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if self.name.chars().count() > MAX_NAME * 2 || self.summary.chars().count() > MAX_SUMMARY * 2 {
            errors.push(FieldError::new("name", "is far too long"));
        }
        if self.description.chars().count() > MAX_DESCRIPTION {
            errors.push(FieldError::new("description", format!("must be at most {MAX_DESCRIPTION} characters")));
        }
        if self.tags.len() > MAX_TAGS * 2 || self.plans.len() > MAX_PLANS {
            errors.push(FieldError::new("plans", format!("at most {MAX_PLANS} plans")));
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }

    /// Everything a product of `kind` needs before review. `categories` are the known slugs;
    /// `own_images` the ids of the seller's uploaded PNG and JPEG files.
    pub fn check(&self, kind: ProductKind, categories: &[String], own_images: &[String]) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if let Some(logo) = &self.logo
            && !own_images.contains(logo)
        {
            errors.push(FieldError::new("logo", "must be one of your uploaded PNG or JPEG images"));
        }
        if self.screenshots.len() > MAX_SCREENSHOTS {
            errors.push(FieldError::new("screenshots", format!("at most {MAX_SCREENSHOTS} screenshots")));
        }
        if self.screenshots.iter().any(|s| !own_images.contains(s)) {
            errors.push(FieldError::new("screenshots", "each must be one of your uploaded PNG or JPEG images"));
        }
        text(&mut errors, "name", &self.name, MAX_NAME);
        text(&mut errors, "summary", &self.summary, MAX_SUMMARY);
        text(&mut errors, "description", &self.description, MAX_DESCRIPTION);
        if !categories.iter().any(|c| c == &self.category) {
            errors.push(FieldError::new("category", "must be one of the marketplace's categories"));
        }
        if self.tags.len() > MAX_TAGS {
            errors.push(FieldError::new("tags", format!("at most {MAX_TAGS} tags")));
        }
        if self.tags.iter().any(|t| t.chars().count() > 24 || t.chars().any(|c| c.is_control() || c == ',')) {
            errors.push(FieldError::new("tags", "each tag is at most 24 characters, without commas"));
        }
        if let Some(e) = &self.support_email
            && let Err(err) = Email::parse("support_email", e)
        {
            errors.push(err);
        }
        if let Some(p) = &self.support_phone
            && let Err(err) = Phone::parse("support_phone", p)
        {
            errors.push(err);
        }
        if let Some(u) = &self.support_url
            && (!(u.starts_with("https://") || u.starts_with("http://")) || u.len() > 300 || u.contains(char::is_whitespace))
        {
            errors.push(FieldError::new("support_url", "must be an http(s) URL"));
        }
        if self.support_email.is_none() && self.support_phone.is_none() && self.support_url.is_none() {
            errors.push(FieldError::new("support_email", "give at least one support contact"));
        }
        if self.sites.is_empty() {
            errors.push(FieldError::new("sites", "choose at least one site to sell on"));
        }
        if self.grace_days.is_some_and(|d| !GRACE_DAYS.contains(&d)) {
            errors.push(FieldError::new("grace_days", format!("between {} and {} days", GRACE_DAYS.start(), GRACE_DAYS.end())));
        }
        if self.no_reason_days.is_some_and(|d| !NO_REASON_DAYS.contains(&d)) {
            errors.push(FieldError::new(
                "no_reason_days",
                format!("between {} and {} days", NO_REASON_DAYS.start(), NO_REASON_DAYS.end()),
            ));
        }
        match (kind, &self.image) {
            (ProductKind::Image, None) => {
                errors.push(FieldError::new("image", "a machine-image product needs its image details"))
            }
            (ProductKind::Image, Some(img)) => {
                if img.image_ref.trim().is_empty() || img.image_ref.len() > 200 {
                    errors.push(FieldError::new("image.image_ref", "must name the image"));
                }
                if img.flavors.is_empty() {
                    errors.push(FieldError::new("image.flavors", "list at least one supported flavor"));
                }
                if img.regions.is_empty() {
                    errors.push(FieldError::new("image.regions", "list at least one region"));
                }
                if !(1..=16_384).contains(&img.min_disk_gb) {
                    errors.push(FieldError::new("image.min_disk_gb", "must be between 1 and 16384"));
                }
            }
            (_, Some(_)) => errors.push(FieldError::new("image", "only machine-image products have image details")),
            (_, None) => {}
        }
        if self.plans.is_empty() {
            errors.push(FieldError::new("plans", "add at least one plan"));
        }
        if self.plans.len() > MAX_PLANS {
            errors.push(FieldError::new("plans", format!("at most {MAX_PLANS} plans")));
        }
        let mut codes = BTreeSet::new();
        for (i, plan) in self.plans.iter().enumerate() {
            let at = format!("plans[{i}]");
            if !codes.insert(plan.code.as_str()) {
                errors.push(FieldError::new(format!("{at}.code"), "is used by another plan"));
            }
            errors.extend(plan.check(kind, &self.sites).into_iter().map(|e| e.within(&at)));
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }

    /// The subscription terms this content sells under: (grace days, no-reason days).
    pub fn terms(&self) -> (u32, u32) {
        (self.grace_days.unwrap_or(DEFAULT_GRACE_DAYS), self.no_reason_days.unwrap_or(DEFAULT_NO_REASON_DAYS))
    }

    /// The lowest price on `site` among the plans, for sorting and filtering.
    pub fn from_price(&self, site: Site) -> Option<i64> {
        self.plans
            .iter()
            .flat_map(|p| p.prices.iter().chain(p.dimensions().flat_map(|d| d.prices.iter())))
            .filter(|sp| sp.site == site)
            .map(|sp| sp.amount_minor)
            .min()
    }

    pub fn has_trial(&self) -> bool {
        self.plans.iter().any(|p| p.trial.is_some())
    }
}

impl Plan {
    fn dimensions(&self) -> impl Iterator<Item = &Dimension> {
        match &self.billing {
            Billing::PayPerUse { dimensions } => dimensions.iter(),
            _ => [].iter(),
        }
    }

    fn check(&self, kind: ProductKind, sites: &[Site]) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if !slug_ok(&self.code, 40) {
            errors.push(FieldError::new("code", "1 to 40 lower-case letters, digits or dashes"));
        }
        text(&mut errors, "name", &self.name, 60);
        let check_prices = |errors: &mut Vec<FieldError>, field: &str, prices: &[SitePrice]| {
            for site in sites {
                match prices.iter().filter(|p| p.site == *site).count() {
                    1 => {}
                    0 => errors.push(FieldError::new(field.to_owned(), format!("needs a price for the {} site", site.as_str()))),
                    _ => errors.push(FieldError::new(
                        field.to_owned(),
                        format!("has more than one price for the {} site", site.as_str()),
                    )),
                }
            }
            if prices.iter().any(|p| !sites.contains(&p.site)) {
                errors.push(FieldError::new(field.to_owned(), "has a price for a site the product is not sold on"));
            }
            if prices.iter().any(|p| p.amount_minor < 0 || p.amount_minor > 10_000_000_000) {
                errors.push(FieldError::new(field.to_owned(), "prices must be between 0 and 100,000,000"));
            }
        };
        match &self.billing {
            Billing::Periodic { seats, .. } => {
                check_prices(&mut errors, "prices", &self.prices);
                if let Some(s) = seats
                    && (s.min == 0 || s.min > s.max || s.max > 100_000)
                {
                    errors.push(FieldError::new("billing.seats", "seats need 1 <= min <= max <= 100000"));
                }
            }
            Billing::OneTime => {
                check_prices(&mut errors, "prices", &self.prices);
                if kind == ProductKind::Saas {
                    // SaaS is a running service; it is sold by the period or by use.
                    errors.push(FieldError::new("billing", "a SaaS plan is periodic or pay-per-use"));
                }
            }
            Billing::PayPerUse { dimensions } => {
                if !self.prices.is_empty() {
                    errors.push(FieldError::new("prices", "a pay-per-use plan is priced per dimension"));
                }
                if dimensions.is_empty() {
                    errors.push(FieldError::new("billing.dimensions", "add at least one dimension"));
                }
                let mut keys = BTreeSet::new();
                for (i, d) in dimensions.iter().enumerate() {
                    let at = format!("billing.dimensions[{i}]");
                    if !slug_ok(&d.key, 40) || !keys.insert(d.key.as_str()) {
                        errors.push(FieldError::new(format!("{at}.key"), "a unique key of lower-case letters, digits or dashes"));
                    }
                    if d.unit.trim().is_empty() || d.unit.chars().count() > 30 {
                        errors.push(FieldError::new(format!("{at}.unit"), "must name the unit, at most 30 characters"));
                    }
                    check_prices(&mut errors, &format!("{at}.prices"), &d.prices);
                }
            }
        }
        if let Some(t) = &self.trial {
            if !TRIAL_DAYS.contains(&t.days) {
                errors.push(FieldError::new("trial.days", "trials last 3 to 180 days"));
            }
            if !matches!(self.billing, Billing::Periodic { .. }) {
                errors.push(FieldError::new("trial", "only monthly or yearly plans have trials"));
            }
        }
        errors
    }
}

/// A seller's shop page (seed §10): edited as a draft, previewed, reviewed, then published.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShopContent {
    /// The banner's headline.
    #[serde(default)]
    pub banner: String,
    /// Markdown, rendered through a sanitizer.
    #[serde(default)]
    pub introduction: String,
    /// Products shown first, in this order (the seller's own, at most 8).
    #[serde(default)]
    pub featured: Vec<String>,
    #[serde(default)]
    pub contact_email: Option<String>,
    #[serde(default)]
    pub contact_phone: Option<String>,
}

pub const MAX_FEATURED: usize = 8;

impl ShopContent {
    pub fn normalise(&mut self) {
        self.banner = self.banner.trim().to_owned();
        let mut seen = BTreeSet::new();
        self.featured.retain(|id| seen.insert(id.clone()));
        self.contact_email = self.contact_email.take().map(|e| e.trim().to_owned()).filter(|e| !e.is_empty());
        self.contact_phone = self.contact_phone.take().map(|e| e.trim().to_owned()).filter(|e| !e.is_empty());
    }

    /// What a shop page needs before review. `own_products` are the seller's product ids.
    pub fn check(&self, own_products: &[String]) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        text(&mut errors, "banner", &self.banner, 60);
        text(&mut errors, "introduction", &self.introduction, 5000);
        if self.featured.len() > MAX_FEATURED {
            errors.push(FieldError::new("featured", format!("at most {MAX_FEATURED} featured products")));
        }
        if self.featured.iter().any(|id| !own_products.contains(id)) {
            errors.push(FieldError::new("featured", "feature only your own products"));
        }
        if let Some(e) = &self.contact_email
            && let Err(err) = Email::parse("contact_email", e)
        {
            errors.push(err);
        }
        if let Some(p) = &self.contact_phone
            && let Err(err) = Phone::parse("contact_phone", p)
        {
            errors.push(err);
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }
}

/// Reasons an operator gives for rejecting, per field. At least one is required.
pub fn check_rejection(reasons: &[(String, String)], general: Option<&str>) -> Result<(), FieldError> {
    let any = reasons.iter().any(|(_, r)| !r.trim().is_empty()) || general.is_some_and(|g| !g.trim().is_empty());
    if !any {
        return Err(FieldError::new("reasons", "a rejection needs at least one reason the seller can act on"));
    }
    if reasons.iter().any(|(f, r)| f.len() > 100 || r.chars().count() > 1000) {
        return Err(FieldError::new("reasons", "each reason is at most 1000 characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cats() -> Vec<String> {
        vec!["devops".into(), "security".into()]
    }

    pub fn sample() -> ProductContent {
        ProductContent {
            name: "Acme Monitor".into(),
            summary: "Uptime monitoring".into(),
            description: "# Acme Monitor\nWatches your sites.".into(),
            category: "devops".into(),
            tags: vec!["Monitoring".into(), "monitoring".into(), " uptime ".into()],
            support_email: Some("help@acme.example".into()),
            sites: vec![Site::Intl, Site::Cn],
            plans: vec![Plan {
                id: None,
                code: "basic-monthly".into(),
                name: "Basic".into(),
                billing: Billing::Periodic { period: Period::Month, seats: None },
                prices: vec![
                    SitePrice { site: Site::Cn, amount_minor: 9900 },
                    SitePrice { site: Site::Intl, amount_minor: 1500 },
                ],
                trial: Some(Trial { days: 14, enterprise_only: false }),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn a_complete_product_passes_and_is_normalised() {
        let mut p = sample();
        p.normalise();
        assert_eq!(p.tags, vec!["monitoring", "uptime"]);
        assert_eq!(p.sites, vec![Site::Cn, Site::Intl]);
        assert_eq!(p.check(ProductKind::Saas, &cats(), &[]), Ok(()));
        assert_eq!(p.from_price(Site::Intl), Some(1500));
        assert!(p.has_trial());
    }

    #[test]
    fn subscription_terms_default_and_are_bounded() {
        let mut p = sample();
        assert_eq!(p.terms(), (DEFAULT_GRACE_DAYS, DEFAULT_NO_REASON_DAYS));
        p.grace_days = Some(30);
        p.no_reason_days = Some(0);
        assert_eq!(p.check(ProductKind::Saas, &cats(), &[]), Ok(()));
        assert_eq!(p.terms(), (30, 0));
        p.grace_days = Some(0);
        p.no_reason_days = Some(16);
        let errors = p.check(ProductKind::Saas, &cats(), &[]).unwrap_err();
        assert!(errors.iter().any(|e| e.field == "grace_days"));
        assert!(errors.iter().any(|e| e.field == "no_reason_days"));
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let mut p = sample();
        p.category = "nope".into();
        p.support_email = None;
        p.plans[0].prices.pop();
        p.plans[0].trial = Some(Trial { days: 2, enterprise_only: true });
        p.plans.push(Plan { code: "basic-monthly".into(), billing: Billing::OneTime, ..p.plans[0].clone() });
        let errors = p.check(ProductKind::Saas, &cats(), &[]).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_ref()).collect();
        for f in [
            "category",
            "support_email",
            "plans[0].prices",
            "plans[0].trial.days",
            "plans[1].code",
            "plans[1].billing",
            "plans[1].trial",
        ] {
            assert!(fields.contains(&f), "{f} missing from {fields:?}");
        }
    }

    #[test]
    fn logos_and_screenshots_are_the_sellers_images() {
        let mut p = sample();
        p.logo = Some("upl_logo".into());
        p.screenshots = vec!["upl_a".into(), "upl_other".into()];
        let errors = p.check(ProductKind::Saas, &cats(), &["upl_logo".into(), "upl_a".into()]).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "screenshots");
        p.screenshots.pop();
        assert!(p.check(ProductKind::Saas, &cats(), &["upl_logo".into(), "upl_a".into()]).is_ok());
    }

    #[test]
    fn image_products_need_image_details() {
        let mut p = sample();
        p.plans[0].trial = None;
        assert!(p.check(ProductKind::Image, &cats(), &[]).unwrap_err().iter().any(|e| e.field == "image"));
        p.image =
            Some(ImageSpec { image_ref: "img-1".into(), flavors: vec![], regions: vec!["cn-north-4".into()], min_disk_gb: 40 });
        assert!(p.check(ProductKind::Image, &cats(), &[]).unwrap_err().iter().any(|e| e.field == "image.flavors"));
        assert!(p.check(ProductKind::Saas, &cats(), &[]).unwrap_err().iter().any(|e| e.field == "image"));
    }

    #[test]
    fn pay_per_use_is_priced_per_dimension() {
        let mut p = sample();
        p.plans[0].trial = None;
        p.plans[0].billing = Billing::PayPerUse {
            dimensions: vec![Dimension {
                key: "api-calls".into(),
                unit: "1k calls".into(),
                prices: vec![SitePrice { site: Site::Cn, amount_minor: 10 }, SitePrice { site: Site::Intl, amount_minor: 2 }],
            }],
        };
        let errors = p.check(ProductKind::Saas, &cats(), &[]).unwrap_err();
        assert_eq!(errors[0].field, "plans[0].prices");
        p.plans[0].prices.clear();
        assert_eq!(p.check(ProductKind::Saas, &cats(), &[]), Ok(()));
        assert_eq!(p.from_price(Site::Intl), Some(2));
    }

    #[test]
    fn shop_pages_feature_only_their_own_products() {
        let mut shop = ShopContent {
            banner: " Acme ".into(),
            introduction: "We build monitoring.".into(),
            featured: vec!["prd_a".into(), "prd_a".into(), "prd_b".into()],
            contact_email: Some(" ".into()),
            contact_phone: None,
        };
        shop.normalise();
        assert_eq!(shop.banner, "Acme");
        assert_eq!(shop.featured, vec!["prd_a", "prd_b"]);
        assert_eq!(shop.contact_email, None);
        assert!(shop.check(&["prd_a".into(), "prd_b".into()]).is_ok());
        let errors = shop.check(&["prd_a".into()]).unwrap_err();
        assert_eq!(errors[0].field, "featured");
        assert!(ShopContent::default().check(&[]).unwrap_err().iter().any(|e| e.field == "banner"));
    }

    #[test]
    fn review_lifecycle() {
        use RevisionState::*;
        assert_eq!(Draft.submit(), Ok(Submitted));
        assert!(Submitted.submit().is_err(), "a submission is frozen");
        assert_eq!(Submitted.start_review(), Ok(InReview));
        assert_eq!(InReview.decide(false), Ok(Rejected));
        assert_eq!(Submitted.decide(true), Ok(Approved));
        assert!(Approved.decide(false).is_err());
        assert!(Approved.withdraw().is_err());
        assert_eq!(Submitted.withdraw(), Ok(Withdrawn));
        assert!(!Submitted.is_editable());
        assert!(check_rejection(&[], Some("  ")).is_err());
        assert!(check_rejection(&[("name".into(), "misleading".into())], None).is_ok());
    }
}
