//! Sites: separate storefronts with their own currency and language (seed §1).
//! An account belongs to exactly one site.

use serde::{Deserialize, Serialize};

use crate::money::Currency;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Site {
    /// China: CNY, Simplified Chinese.
    Cn,
    /// International: USD, English.
    Intl,
}

/// The languages the pages are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Lang {
    #[serde(rename = "en")]
    En,
    #[serde(rename = "zh-CN")]
    ZhCn,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown site {0:?}: expected cn or intl")]
pub struct UnknownSite(pub String);

impl Site {
    pub const ALL: [Site; 2] = [Site::Cn, Site::Intl];

    pub fn parse(s: &str) -> Result<Self, UnknownSite> {
        match s {
            "cn" => Ok(Self::Cn),
            "intl" => Ok(Self::Intl),
            other => Err(UnknownSite(other.to_owned())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cn => "cn",
            Self::Intl => "intl",
        }
    }

    pub fn currency(self) -> Currency {
        match self {
            Self::Cn => Currency::Cny,
            Self::Intl => Currency::Usd,
        }
    }

    /// The tax included in the site's prices: VAT on software services on the China site;
    /// none on the international site, whose sellers' prices are net.
    pub fn tax_rate(self) -> crate::pricing::Bp {
        match self {
            Self::Cn => crate::pricing::Bp(600),
            Self::Intl => crate::pricing::Bp(0),
        }
    }

    pub fn default_lang(self) -> Lang {
        match self {
            Self::Cn => Lang::ZhCn,
            Self::Intl => Lang::En,
        }
    }
}

impl Lang {
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "en" | "en-us" | "en-gb" => Some(Self::En),
            "zh" | "zh-cn" | "zh-hans" => Some(Self::ZhCn),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::ZhCn => "zh-CN",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sites_have_their_currency_and_language() {
        assert_eq!(Site::Cn.currency(), Currency::Cny);
        assert_eq!(Site::Intl.currency(), Currency::Usd);
        assert_eq!(Site::Cn.default_lang(), Lang::ZhCn);
        assert!(Site::parse("mars").is_err());
        assert_eq!(Lang::parse("zh-CN"), Some(Lang::ZhCn));
    }
}
