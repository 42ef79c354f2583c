//! The pages' words in English and Simplified Chinese.
//!
//! A missing key shows as the key itself, which a test catches (every key used by a
//! template must be in [`ENTRIES`]).

use souk_core::site::Lang;

/// Translator handed to templates as `t`.
#[derive(Debug, Clone, Copy)]
pub struct Tr {
    pub lang: Lang,
}

impl Tr {
    pub fn get<'a>(&self, key: &'a str) -> &'a str {
        match ENTRIES.iter().find(|(k, _, _)| *k == key) {
            Some((_, en, zh)) => match self.lang {
                Lang::En => en,
                Lang::ZhCn => zh,
            },
            None => key,
        }
    }

    pub fn code(&self) -> &'static str {
        self.lang.code()
    }
}

/// (key, English, 简体中文)
pub const ENTRIES: &[(&str, &str, &str)] = &[
    ("brand.tagline", "The open cloud marketplace", "开放的云市场"),
    ("nav.home", "Home", "首页"),
    ("nav.orgs", "Organizations", "组织"),
    ("nav.account", "Account", "账号"),
    ("nav.verifications", "Verification queue", "实名认证审核"),
    ("nav.audit", "Audit log", "审计日志"),
    ("nav.api", "API", "API"),
    ("nav.signin", "Sign in", "登录"),
    ("nav.signup", "Sign up", "注册"),
    ("nav.signout", "Sign out", "退出"),
    ("nav.lang_other", "中文", "English"),
    ("home.title", "Buy, try and sell cloud software", "购买、试用和销售云软件"),
    (
        "home.lead",
        "Souk is a self-hostable cloud marketplace: sellers list SaaS, machine images and license codes; verified buyers try and buy them; every purchase is provisioned through the seller's own system.",
        "Souk 是可自托管的云市场：商家上架 SaaS、镜像和许可证产品；经过实名认证的买家试用和购买；每笔订单都通过商家自己的系统开通。",
    ),
    ("home.start", "Create an account", "创建账号"),
    ("home.signed_in_as", "Signed in as", "当前登录"),
    ("home.your_orgs", "Your organizations", "你的组织"),
    ("field.email", "Email", "邮箱"),
    ("field.name", "Name", "姓名"),
    ("field.password", "Password", "密码"),
    ("field.password_hint", "At least 10 characters", "至少 10 个字符"),
    ("field.site", "Site", "站点"),
    ("field.lang", "Language", "语言"),
    ("field.role", "Role", "角色"),
    ("field.org_name", "Organization name", "组织名称"),
    ("field.current_password", "Current password", "当前密码"),
    ("field.new_password", "New password", "新密码"),
    ("field.key_name", "Key name", "密钥名称"),
    ("field.real_name", "Legal name", "真实姓名"),
    ("field.id_number", "ID or passport number", "身份证或护照号码"),
    ("field.company_name", "Company name", "企业名称"),
    ("field.registration_number", "Registration number (unified social credit code)", "注册号（统一社会信用代码）"),
    ("field.contact_name", "Contact person", "联系人"),
    ("field.contact_phone", "Contact phone (+86…)", "联系电话（+86…）"),
    ("field.contact_email", "Contact email", "联系邮箱"),
    ("field.documents", "Documents (PDF, PNG or JPEG, up to 5 MiB each)", "证明材料（PDF、PNG 或 JPEG，每个不超过 5 MiB）"),
    ("field.reason", "Reason (required to reject)", "原因（驳回时必填）"),
    ("site.cn", "China (CNY, 中文)", "中国站（人民币，中文）"),
    ("site.intl", "International (USD, English)", "国际站（美元，英文）"),
    ("role.owner", "Owner", "所有者"),
    ("role.admin", "Admin", "管理员"),
    ("role.member", "Member", "成员"),
    ("kind.personal", "Personal", "个人"),
    ("kind.enterprise", "Enterprise", "企业"),
    ("status.unverified", "Not verified", "未认证"),
    ("status.pending", "Waiting for review", "审核中"),
    ("status.verified", "Verified", "已认证"),
    ("status.approved", "Approved", "已通过"),
    ("status.rejected", "Rejected", "已驳回"),
    ("signup.title", "Create your account", "创建账号"),
    ("signup.submit", "Create account", "创建账号"),
    ("signup.have_account", "Already have an account?", "已有账号？"),
    ("signin.title", "Sign in", "登录"),
    ("signin.submit", "Sign in", "登录"),
    ("signin.no_account", "New to Souk?", "还没有账号？"),
    ("account.title", "Your account", "你的账号"),
    ("account.change_password", "Change password", "修改密码"),
    ("account.password_changed", "Password changed. Other sessions were signed out.", "密码已修改，其他会话已退出。"),
    ("account.staff", "Platform role", "平台角色"),
    ("orgs.title", "Organizations", "组织"),
    ("orgs.create", "Create an enterprise organization", "创建企业组织"),
    ("orgs.create_submit", "Create", "创建"),
    ("orgs.kind", "Type", "类型"),
    ("orgs.verification", "Real-name verification", "实名认证"),
    ("org.members", "Members", "成员"),
    ("org.add_member", "Add a member", "添加成员"),
    ("org.add_member_hint", "They must already have an account on this site.", "对方需已在本站注册账号。"),
    ("org.add", "Add", "添加"),
    ("org.change_role", "Change", "修改"),
    ("org.remove", "Remove", "移除"),
    ("org.api_keys", "API keys", "API 密钥"),
    ("org.verify", "Verification", "实名认证"),
    ("keys.title", "API keys", "API 密钥"),
    ("keys.create", "Create a key", "创建密钥"),
    ("keys.new_token", "Copy this key now; it will not be shown again:", "请立即复制此密钥，它不会再次显示："),
    ("keys.prefix", "Key", "密钥"),
    ("keys.last_used", "Last used", "最近使用"),
    ("keys.revoke", "Revoke", "吊销"),
    ("keys.revoked", "Revoked", "已吊销"),
    ("keys.none", "No keys yet.", "还没有密钥。"),
    ("verify.title", "Real-name verification", "实名认证"),
    (
        "verify.individual_lead",
        "Verify your identity to try and buy products that require it.",
        "完成个人实名认证后即可试用和购买需要认证的产品。",
    ),
    (
        "verify.enterprise_lead",
        "Verify your enterprise: some trials and purchases are open to verified enterprises only.",
        "完成企业实名认证：部分试用和购买仅对已认证企业开放。",
    ),
    ("verify.submit", "Submit for review", "提交审核"),
    ("verify.history", "Submissions", "提交记录"),
    ("verify.pending_note", "Your submission is waiting for an operator's review.", "你的认证申请正在等待运营人员审核。"),
    ("verify.verified_note", "Verified as", "已认证为"),
    (
        "verify.rejected_note",
        "Your last submission was rejected. Correct it and submit again.",
        "上次提交已被驳回，请修改后重新提交。",
    ),
    ("queue.title", "Verification queue", "实名认证审核队列"),
    ("queue.empty", "Nothing is waiting for review.", "没有待审核的申请。"),
    ("queue.submitted", "Submitted", "提交时间"),
    ("queue.org", "Organization", "组织"),
    ("queue.kind", "Type", "类型"),
    ("queue.open", "Review", "审核"),
    ("queue.approve", "Approve", "通过"),
    ("queue.reject", "Reject", "驳回"),
    ("queue.documents", "Documents", "证明材料"),
    ("queue.details", "Details", "详情"),
    ("queue.decided", "Decided", "审核结果"),
    ("audit.title", "Audit log", "审计日志"),
    ("audit.at", "When", "时间"),
    ("audit.actor", "Who", "操作人"),
    ("audit.action", "Action", "操作"),
    ("audit.target", "Target", "对象"),
    ("audit.summary", "Summary", "摘要"),
    ("audit.older", "Older entries", "更早的记录"),
    ("error.not_found", "Page not found", "页面不存在"),
    ("error.forbidden", "You cannot open this page", "你无权访问此页面"),
    ("error.back_home", "Back to the home page", "返回首页"),
    ("error.fix_fields", "Please correct the fields marked below.", "请修改下面标出的字段。"),
    ("common.save", "Save", "保存"),
    ("nav.products", "Products", "商品"),
    ("nav.subscriptions", "My subscriptions", "我的订阅"),
    ("checkout.title", "Checkout", "确认订单"),
    ("checkout.list", "List price", "原价"),
    ("checkout.coupon", "Coupon", "优惠券"),
    ("checkout.total", "Total", "应付金额"),
    ("checkout.tax", "of which tax", "其中税费"),
    ("checkout.pay", "Pay from wallet", "使用钱包支付"),
    ("checkout.wallet_note", "The amount is taken from your organization's wallet.", "金额将从组织钱包中扣除。"),
    ("checkout.periods", "Months or years", "购买时长（月或年）"),
    ("checkout.buy", "Buy", "立即购买"),
    ("checkout.sign_in_to_buy", "Sign in to buy", "登录后购买"),
    ("checkout.cannot_quote", "This purchase cannot be priced", "无法为该订单报价"),
    ("subs.title", "My subscriptions", "我的订阅"),
    ("subs.none", "No subscriptions yet.", "还没有订阅。"),
    ("subs.until", "Until", "到期"),
    ("subs.refund_now", "Refund if unsubscribed now", "现在退订可退"),
    ("subs.renew", "Renew one period", "续费一个周期"),
    ("subs.unsubscribe", "Unsubscribe", "退订"),
    ("wallet.title", "Wallet", "钱包"),
    ("wallet.empty", "Empty", "无余额"),
    ("wallet.change", "Change", "变动"),
    ("wallet.balance", "Balance", "余额"),
    ("nav.reviews", "Product reviews", "商品审核"),
    ("nav.sellers", "Sellers", "商家管理"),
    ("seller.title", "Seller center", "商家中心"),
    ("seller.status", "Seller status", "商家状态"),
    ("seller.not_applied", "Not applied", "未申请"),
    (
        "seller.needs_verification",
        "Only a verified enterprise can sell. Complete enterprise verification first.",
        "只有完成企业实名认证的组织才能入驻销售，请先完成认证。",
    ),
    ("seller.agreements", "Platform agreements", "平台协议"),
    ("seller.agreement", "Agreement", "协议"),
    ("seller.version", "Version", "版本"),
    ("seller.effective", "In force from", "生效日期"),
    ("seller.accepted", "Accepted", "已签署"),
    ("seller.accept", "Accept", "同意并签署"),
    ("seller.apply", "Apply to sell", "申请入驻"),
    ("seller.apply_again", "Apply again", "重新申请"),
    (
        "seller.apply_lead",
        "Accept the agreements above, then apply. An operator reviews your application.",
        "签署以上协议后提交入驻申请，由运营人员审核。",
    ),
    ("seller.products", "Products", "商品管理"),
    ("seller.applications", "My applications", "我的申请"),
    ("seller.no_products", "No products yet.", "还没有商品。"),
    ("seller.live", "Live", "已上架版本"),
    ("seller.in_progress", "In progress", "进行中"),
    ("seller.listed", "Listed", "已上架"),
    ("seller.not_listed", "Not listed", "未上架"),
    ("seller.delisted_by_operator", "Delisted by the operator", "被平台下架"),
    ("seller.new_product", "New product", "发布新商品"),
    ("seller.create_draft", "Create draft", "创建草稿"),
    ("seller.review_due", "Review due", "审核截止"),
    ("seller.reviewer_says", "Reviewer", "审核意见"),
    ("seller.save_draft", "Save draft", "保存草稿"),
    ("seller.submit_review", "Save and submit for review", "保存并提交审核"),
    ("seller.withdraw", "Withdraw", "撤回"),
    ("seller.list", "List in the store", "上架"),
    ("seller.delist", "Delist", "下架"),
    ("seller.view_in_store", "View in the store", "在商城中查看"),
    ("seller.state", "State", "状态"),
    ("seller.reasons", "Reasons", "原因"),
    ("product.summary", "Summary", "简介"),
    ("product.description", "Description (Markdown)", "商品详情（Markdown）"),
    ("product.tags", "Tags (comma-separated)", "标签（逗号分隔）"),
    ("product.support_email", "Support email", "支持邮箱"),
    ("product.support_phone", "Support phone", "支持电话"),
    ("product.support_url", "Support web page", "支持网址"),
    ("product.sites", "Sold on", "销售站点"),
    ("product.grace_days", "Grace period after expiry, days (empty: 15)", "到期后宽限期（天，留空为 15）"),
    ("product.no_reason_days", "No-reason refund window, days (empty: 5; 0: none)", "无理由退订期（天，留空为 5；0 为不支持）"),
    ("product.image", "Machine image", "镜像信息"),
    ("product.image_ref", "Image reference", "镜像标识"),
    ("product.flavors", "Supported flavors (comma-separated)", "支持的规格（逗号分隔）"),
    ("product.regions", "Regions (comma-separated)", "区域（逗号分隔）"),
    ("product.min_disk_gb", "Minimum disk (GB)", "最小磁盘（GB）"),
    ("product.plan_code", "Code", "编码"),
    ("product.media", "Logo and screenshots", "商品图标与截图"),
    ("product.logo", "Logo", "图标"),
    ("product.screenshots", "Screenshots", "截图"),
    ("product.upload", "Upload", "上传"),
    ("product.trial_days", "Trial days", "试用天数"),
    ("review.title", "Product reviews", "商品审核"),
    ("review.sla_note", "Ordered by deadline: 3 working days after submission.", "按截止时间排序：提交后 3 个工作日内完成审核。"),
    ("review.update", "update", "变更"),
    ("review.replaces", "replaces", "替换"),
    ("review.start", "Take into review", "开始审核"),
    (
        "review.reasons_hint",
        "To reject, give at least one reason; each reason appears beside its field for the seller.",
        "驳回时至少填写一条原因；每条原因会显示在商家对应的字段旁。",
    ),
    ("review.general", "General reason", "总体意见"),
    ("sla.on_track", "On track", "正常"),
    ("sla.at_risk", "At risk", "即将超时"),
    ("sla.breached", "Breached", "已超时"),
    ("sellers.title", "Sellers", "商家管理"),
    ("shop.title", "Shop decoration", "店铺装修"),
    ("shop.banner", "Banner headline", "横幅标题"),
    ("shop.introduction", "Introduction (Markdown)", "店铺介绍（Markdown）"),
    ("shop.featured", "Featured products", "推荐商品"),
    ("shop.preview", "Save and preview", "保存并预览"),
    (
        "shop.preview_note",
        "Preview: this is how your shop page will look once approved. Buyers do not see it yet.",
        "预览：审核通过后店铺页面将如下所示，买家目前还看不到。",
    ),
    ("shop.published", "Published", "已发布"),
    ("shop.unpublished", "Not published yet", "尚未发布"),
    ("shop.reviews", "Shop pages", "店铺装修审核"),
    ("sellers.reason", "Reason", "原因"),
    ("sellers.warn", "Warn", "警告"),
    ("sellers.suspend", "Suspend", "暂停"),
    ("sellers.reinstate", "Reinstate", "恢复"),
    ("store.search", "Search", "搜索"),
    (
        "store.search_placeholder",
        "Search SaaS, images, licenses… e.g. monitoring, 数据",
        "搜索 SaaS、镜像、许可证…… 如：监控、数据",
    ),
    ("store.categories", "Categories", "分类"),
    ("store.category", "Category", "分类"),
    ("store.trial_center", "Trial center: try before you buy", "试用中心：先试后买"),
    ("store.newest", "New in the marketplace", "新上架"),
    ("store.browse_all", "Browse all products", "浏览全部商品"),
    ("store.no_results", "No products match.", "没有符合条件的商品。"),
    ("store.results", "products", "个商品"),
    ("store.any", "Any", "不限"),
    ("store.kind", "Type", "类型"),
    ("store.free_trial", "Free trial", "免费试用"),
    ("store.price_range", "Price", "价格"),
    ("store.sort", "Sort by", "排序"),
    ("store.apply_filters", "Apply", "筛选"),
    ("store.prev", "Previous", "上一页"),
    ("store.next", "Next", "下一页"),
    ("store.from", "From", "起价"),
    ("store.seller", "Seller", "商家"),
    ("store.plans", "Plans and prices", "规格与价格"),
    ("store.plan", "Plan", "规格"),
    ("store.billing", "Billing", "计费方式"),
    ("store.price", "Price", "价格"),
    ("store.days", "days", "天"),
    ("store.enterprise_only", "verified enterprises only", "仅限认证企业"),
    ("store.description", "Description", "商品详情"),
    ("store.support", "Support", "技术支持"),
    ("store.shop_lead", "Products from this seller", "该商家的商品"),
    ("sort.default", "Best match", "默认"),
    ("sort.relevance", "Relevance", "相关度"),
    ("sort.newest", "Newest", "最新上架"),
    ("sort.price", "Price: low to high", "价格从低到高"),
    ("sort.price_desc", "Price: high to low", "价格从高到低"),
    ("kind.saas", "SaaS", "SaaS"),
    ("kind.image", "Machine image", "镜像"),
    ("kind.license", "License", "许可证"),
    ("kind.service", "Service", "服务"),
    ("billing.month", "Monthly", "包月"),
    ("billing.year", "Yearly", "包年"),
    ("billing.one_time", "One-time", "一次性"),
    ("billing.pay_per_use", "Pay per use", "按量付费"),
    ("common.none", "None", "无"),
    ("common.created", "Created", "创建时间"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_translated() {
        let mut seen = std::collections::HashSet::new();
        for (k, en, zh) in ENTRIES {
            assert!(seen.insert(*k), "duplicate key {k}");
            assert!(!en.is_empty() && !zh.is_empty(), "empty translation for {k}");
        }
    }

    #[test]
    fn every_key_used_by_a_template_exists() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/templates");
        let re_start = "t.get(\"";
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let mut rest = text.as_str();
            while let Some(i) = rest.find(re_start) {
                rest = &rest[i + re_start.len()..];
                let end = rest.find('"').unwrap();
                let key = &rest[..end];
                assert!(ENTRIES.iter().any(|(k, _, _)| *k == key), "{} uses missing key {key}", path.display());
            }
        }
    }

    #[test]
    fn falls_back_to_the_key() {
        assert_eq!(Tr { lang: Lang::ZhCn }.get("nav.home"), "首页");
        assert_eq!(Tr { lang: Lang::En }.get("no.such.key"), "no.such.key");
    }
}
