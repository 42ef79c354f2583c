//! The message center's catalogue (seed §4): what Souk tells an organization, in which
//! category, in words of both languages, and which categories a recipient may mute.
//!
//! A message is rendered from a template with named values (`{product}`); the values come from
//! the event that caused it. Rendering is plain substitution: values are text, never markup,
//! and the HTML part escapes them.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::site::Lang;

/// What a message is about. Recipients and mutes are set per category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Real-name verification approved or rejected.
    Verification,
    /// An application to sell approved or rejected, a warning, a suspension.
    SellerAccount,
    /// A product revision approved or rejected.
    ProductReview,
    /// A shop page approved or rejected.
    ShopReview,
    /// A review nearing its deadline (operators).
    ReviewSla,
    /// An order paid.
    OrderPaid,
    /// A purchase provisioned by the seller's system.
    Provisioned,
    /// A purchase the seller's system could not provision (refunded in full).
    ProvisioningFailed,
    /// A subscription's term ends soon (7, 3 and 1 days ahead).
    ExpiryReminder,
    /// A trial ends soon.
    TrialEnding,
    /// Auto-renewal could not pay for the next term.
    RenewalFailed,
    /// A subscription's term ended: grace period.
    Expired,
    /// A subscription released at the end of its grace period.
    Released,
    /// Money back in the wallet.
    Refund,
    /// Money into the wallet.
    TopUp,
    /// A license-code pool running low.
    LicensePoolLow,
    /// A seller's endpoint failing every delivery.
    EndpointFailing,
    /// The code that confirms an extra email address or phone number (sent to it only).
    Confirmation,
}

/// The families categories belong to; a family decides whether a category may be muted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// Who the organization is, and what it may do: never muted.
    Security,
    /// Money: never muted.
    Billing,
    Catalog,
    Orders,
    Operations,
}

impl Category {
    pub const ALL: [Category; 18] = [
        Self::Verification,
        Self::SellerAccount,
        Self::ProductReview,
        Self::ShopReview,
        Self::ReviewSla,
        Self::OrderPaid,
        Self::Provisioned,
        Self::ProvisioningFailed,
        Self::ExpiryReminder,
        Self::TrialEnding,
        Self::RenewalFailed,
        Self::Expired,
        Self::Released,
        Self::Refund,
        Self::TopUp,
        Self::LicensePoolLow,
        Self::EndpointFailing,
        Self::Confirmation,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Verification => "verification",
            Self::SellerAccount => "seller_account",
            Self::ProductReview => "product_review",
            Self::ShopReview => "shop_review",
            Self::ReviewSla => "review_sla",
            Self::OrderPaid => "order_paid",
            Self::Provisioned => "provisioned",
            Self::ProvisioningFailed => "provisioning_failed",
            Self::ExpiryReminder => "expiry_reminder",
            Self::TrialEnding => "trial_ending",
            Self::RenewalFailed => "renewal_failed",
            Self::Expired => "expired",
            Self::Released => "released",
            Self::Refund => "refund",
            Self::TopUp => "top_up",
            Self::LicensePoolLow => "license_pool_low",
            Self::EndpointFailing => "endpoint_failing",
            Self::Confirmation => "confirmation",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    pub fn family(self) -> Family {
        match self {
            Self::Verification | Self::SellerAccount | Self::Confirmation => Family::Security,
            Self::OrderPaid | Self::Refund | Self::TopUp | Self::ProvisioningFailed | Self::RenewalFailed => Family::Billing,
            Self::ProductReview | Self::ShopReview | Self::LicensePoolLow => Family::Catalog,
            Self::Provisioned | Self::ExpiryReminder | Self::TrialEnding | Self::Expired | Self::Released => Family::Orders,
            Self::ReviewSla | Self::EndpointFailing => Family::Operations,
        }
    }

    /// Security and billing messages always reach their recipients.
    pub fn mutable(self) -> bool {
        !matches!(self.family(), Family::Security | Family::Billing)
    }

    /// Whether an organization sets recipients for it (a confirmation code goes only to the
    /// address being confirmed).
    pub fn settable(self) -> bool {
        self != Self::Confirmation
    }

    /// The category's name as a recipient reads it.
    pub fn title(self, lang: Lang) -> &'static str {
        let (en, zh) = match self {
            Self::Verification => ("Real-name verification", "实名认证"),
            Self::SellerAccount => ("Seller account", "商家账号"),
            Self::ProductReview => ("Product review", "商品审核"),
            Self::ShopReview => ("Shop page review", "店铺审核"),
            Self::ReviewSla => ("Review deadlines", "审核时限"),
            Self::OrderPaid => ("Orders paid", "订单支付"),
            Self::Provisioned => ("Provisioning done", "开通成功"),
            Self::ProvisioningFailed => ("Provisioning failed", "开通失败"),
            Self::ExpiryReminder => ("Expiry reminders", "到期提醒"),
            Self::TrialEnding => ("Trials ending", "试用即将结束"),
            Self::RenewalFailed => ("Auto-renewal failed", "自动续费失败"),
            Self::Expired => ("Expired", "已到期"),
            Self::Released => ("Released", "已释放"),
            Self::Refund => ("Refunds", "退款"),
            Self::TopUp => ("Top-ups", "充值"),
            Self::LicensePoolLow => ("License codes running low", "授权码库存不足"),
            Self::EndpointFailing => ("Seller endpoint failing", "商家接口异常"),
            Self::Confirmation => ("Confirmation codes", "验证码"),
        };
        match lang {
            Lang::En => en,
            Lang::ZhCn => zh,
        }
    }

    /// (subject, body) templates with `{name}` placeholders.
    fn template(self, lang: Lang) -> (&'static str, &'static str) {
        match (self, lang) {
            (Self::Verification, Lang::En) => {
                ("Real-name verification {outcome}", "The real-name verification of {org} was {outcome}.{reason_line}")
            }
            (Self::Verification, Lang::ZhCn) => ("实名认证{outcome}", "{org} 的实名认证{outcome}。{reason_line}"),
            (Self::SellerAccount, Lang::En) => ("Your seller account: {outcome}", "{org}: {outcome}.{reason_line}"),
            (Self::SellerAccount, Lang::ZhCn) => ("商家账号：{outcome}", "{org}：{outcome}。{reason_line}"),
            (Self::ProductReview, Lang::En) => {
                ("{product}: review {outcome}", "The review of {product} ended: {outcome}.{reason_line}")
            }
            (Self::ProductReview, Lang::ZhCn) => {
                ("{product}：审核{outcome}", "商品 {product} 审核结束：{outcome}。{reason_line}")
            }
            (Self::ShopReview, Lang::En) => {
                ("Shop page review {outcome}", "The review of your shop page ended: {outcome}.{reason_line}")
            }
            (Self::ShopReview, Lang::ZhCn) => ("店铺审核{outcome}", "店铺页面审核结束：{outcome}。{reason_line}"),
            (Self::ReviewSla, Lang::En) => {
                ("Review at risk: {subject}", "{subject} has waited for review since {since}; its deadline is {deadline}.")
            }
            (Self::ReviewSla, Lang::ZhCn) => {
                ("审核即将超时：{subject}", "{subject} 自 {since} 起等待审核，截止时间 {deadline}。")
            }
            (Self::OrderPaid, Lang::En) => ("Order {order} paid", "Order {order} for {product} was paid: {amount}."),
            (Self::OrderPaid, Lang::ZhCn) => ("订单 {order} 已支付", "订单 {order}（{product}）已支付：{amount}。"),
            (Self::Provisioned, Lang::En) => {
                ("{product} is ready", "{product} has been provisioned for you. Open your subscription to see how to reach it.")
            }
            (Self::Provisioned, Lang::ZhCn) => ("{product} 已开通", "{product} 已为您开通，请在订阅详情中查看访问方式。"),
            (Self::ProvisioningFailed, Lang::En) => (
                "{product} could not be provisioned",
                "The seller's system could not provision {product}. Order {order} was cancelled and refunded in full.",
            ),
            (Self::ProvisioningFailed, Lang::ZhCn) => {
                ("{product} 开通失败", "商家系统未能开通 {product}，订单 {order} 已取消并全额退款。")
            }
            (Self::ExpiryReminder, Lang::En) => (
                "{product} expires in {days} days",
                "Your subscription to {product} ends on {expires}. Renew it to keep using it.",
            ),
            (Self::ExpiryReminder, Lang::ZhCn) => {
                ("{product} 将在 {days} 天后到期", "您订阅的 {product} 将于 {expires} 到期，请及时续费。")
            }
            (Self::TrialEnding, Lang::En) => (
                "Your {product} trial ends in {days} days",
                "Your free trial of {product} ends on {expires}. Buy a plan to keep using it.",
            ),
            (Self::TrialEnding, Lang::ZhCn) => {
                ("{product} 试用将在 {days} 天后结束", "您对 {product} 的免费试用将于 {expires} 结束，购买套餐即可继续使用。")
            }
            (Self::RenewalFailed, Lang::En) => (
                "{product} could not be renewed",
                "Auto-renewal of {product} failed: {reason}. Your subscription ends on {expires} unless you renew it.",
            ),
            (Self::RenewalFailed, Lang::ZhCn) => {
                ("{product} 自动续费失败", "{product} 自动续费失败：{reason}。如不续费，订阅将于 {expires} 到期。")
            }
            (Self::Expired, Lang::En) => (
                "{product} has expired",
                "Your subscription to {product} ended. It is kept until {release_at}; renew before then to keep your data.",
            ),
            (Self::Expired, Lang::ZhCn) => {
                ("{product} 已到期", "您订阅的 {product} 已到期，保留至 {release_at}，请在此之前续费以保留数据。")
            }
            (Self::Released, Lang::En) => ("{product} was released", "Your subscription to {product} was released."),
            (Self::Released, Lang::ZhCn) => ("{product} 已释放", "您订阅的 {product} 已释放。"),
            (Self::Refund, Lang::En) => ("Refund of {amount}", "{amount} was refunded to your wallet ({reason})."),
            (Self::Refund, Lang::ZhCn) => ("退款 {amount}", "{amount} 已退回您的钱包（{reason}）。"),
            (Self::TopUp, Lang::En) => ("{amount} added to your wallet", "{amount} was added to your wallet."),
            (Self::TopUp, Lang::ZhCn) => ("钱包已充值 {amount}", "{amount} 已充入您的钱包。"),
            (Self::LicensePoolLow, Lang::En) => (
                "{product}: {available} license codes left",
                "Only {available} license codes are left for {product}. Upload more before orders are refused.",
            ),
            (Self::LicensePoolLow, Lang::ZhCn) => {
                ("{product}：授权码仅剩 {available} 个", "{product} 的授权码仅剩 {available} 个，请在订单被拒绝前补充。")
            }
            (Self::EndpointFailing, Lang::En) => (
                "Deliveries to {product} are failing",
                "Every delivery to {endpoint} has failed since {since}. Check the delivery log.",
            ),
            (Self::Confirmation, Lang::En) => (
                "Your Souk confirmation code: {code}",
                "Enter {code} to receive {org}'s messages at this address. The code is valid for 30 minutes.",
            ),
            (Self::Confirmation, Lang::ZhCn) => {
                ("您的 Souk 验证码：{code}", "输入 {code} 即可在此地址接收 {org} 的消息，30 分钟内有效。")
            }
            (Self::EndpointFailing, Lang::ZhCn) => {
                ("{product} 推送持续失败", "自 {since} 起，推送到 {endpoint} 的消息全部失败，请查看推送日志。")
            }
        }
    }
}

/// A message in one language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    /// The same words as HTML, each value escaped.
    pub html: String,
}

fn fill(template: &str, vars: &BTreeMap<String, String>, escape: bool) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let value = vars.get(&after[..close]).map(String::as_str).unwrap_or("");
                out.push_str(&if escape { html_escape(value) } else { value.to_owned() });
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// The words a state stands for in a message (`approved`), in each language.
fn word(lang: Lang, key: &str) -> Option<&'static str> {
    let (en, zh) = match key {
        "approved" => ("approved", "已通过"),
        "rejected" => ("rejected", "未通过"),
        "warn" | "warned" => ("warned", "警告"),
        "suspend" | "suspended" => ("suspended", "已暂停"),
        "reinstate" | "reinstated" => ("reinstated", "已恢复"),
        "delist" | "delisted" => ("delisted", "已下架"),
        "relist" | "relisted" => ("listed again", "已重新上架"),
        "no_reason" => ("no-reason unsubscription", "无理由退订"),
        "unused_periods" => ("unused periods", "未使用的周期"),
        _ => return None,
    };
    Some(match lang {
        Lang::En => en,
        Lang::ZhCn => zh,
    })
}

/// Values that name a state rather than quote something (`outcome`, `reason`), put in the
/// reader's language; everything else is shown as given.
const WORD_VARS: [&str; 2] = ["outcome", "reason"];

/// Renders a category's message in `lang` with `vars`; a missing value renders empty.
pub fn render(category: Category, lang: Lang, vars: &BTreeMap<String, String>) -> Rendered {
    let mut vars = vars.clone();
    for k in WORD_VARS {
        if let Some(v) = vars.get_mut(k)
            && let Some(w) = word(lang, v)
        {
            *v = w.to_owned();
        }
    }
    let vars = &vars;
    let (subject, body) = category.template(lang);
    let text = fill(body, vars, false);
    let html = format!("<p>{}</p>", fill(body, vars, true));
    Rendered { subject: fill(subject, vars, false).replace(['\r', '\n'], " "), text, html }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn every_category_renders_in_both_languages_with_no_placeholder_left() {
        let all = vars(&[
            ("outcome", "approved"),
            ("org", "Acme"),
            ("reason_line", ""),
            ("product", "Uptime"),
            ("subject", "Uptime"),
            ("since", "2026-03-02"),
            ("deadline", "2026-03-05"),
            ("order", "ord_1"),
            ("amount", "¥70.00"),
            ("days", "3"),
            ("expires", "2026-04-02"),
            ("release_at", "2026-04-17"),
            ("reason", "unsubscribed"),
            ("available", "9"),
            ("endpoint", "https://x.example/"),
            ("code", "123456"),
        ]);
        for c in Category::ALL {
            assert_eq!(Category::parse(c.as_str()), Some(c));
            for lang in [Lang::En, Lang::ZhCn] {
                let r = render(c, lang, &all);
                for s in [&r.subject, &r.text, &r.html] {
                    assert!(!s.contains('{') && !s.contains('}'), "{c:?} {lang:?}: {s}");
                    assert!(!s.is_empty());
                }
                assert!(!c.title(lang).is_empty());
            }
        }
    }

    #[test]
    fn values_are_text_in_the_html_part_and_cannot_break_the_subject() {
        let r = render(Category::ProductReview, Lang::En, &vars(&[("product", "<b>X</b>\r\nBcc: a@b"), ("outcome", "approved")]));
        assert!(r.html.contains("&lt;b&gt;X&lt;/b&gt;"), "{}", r.html);
        assert!(!r.subject.contains('\n') && !r.subject.contains('\r'), "{}", r.subject);
        assert!(r.text.contains("<b>X</b>"), "the text part is plain text");
    }

    #[test]
    fn states_are_told_in_the_readers_language() {
        let v = vars(&[("product", "Uptime"), ("outcome", "rejected"), ("reason_line", "")]);
        assert_eq!(render(Category::ProductReview, Lang::ZhCn, &v).subject, "Uptime：审核未通过");
        assert_eq!(render(Category::ProductReview, Lang::En, &v).subject, "Uptime: review rejected");
        let refund = vars(&[("amount", "¥70.00"), ("reason", "no_reason")]);
        assert_eq!(render(Category::Refund, Lang::ZhCn, &refund).text, "¥70.00 已退回您的钱包（无理由退订）。");
    }

    #[test]
    fn security_and_billing_cannot_be_muted() {
        assert!(!Category::Verification.mutable());
        assert!(!Category::Refund.mutable());
        assert!(!Category::OrderPaid.mutable());
        assert!(Category::ProductReview.mutable());
        assert!(Category::ExpiryReminder.mutable());
    }
}
