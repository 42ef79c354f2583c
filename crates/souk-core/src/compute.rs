//! Machine-image purchases (seed §8): what a buyer chooses in the deployment wizard, checked
//! against what the image supports, and the server states a deployment goes through.
//!
//! The administrator password is its own type: it has no `Serialize`, its `Debug` hides it,
//! and it is only ever handed to the compute provider (sealed while it waits in the store).

use serde::{Deserialize, Serialize};

use crate::catalog::ImageSpec;
use crate::identity::{FieldError, string_enum};

/// The most servers one order deploys.
pub const MAX_SERVERS: u32 = 10;
/// The largest system disk.
pub const MAX_DISK_GB: u32 = 16_384;
/// Public bandwidth, when a public IP is wanted.
pub const BANDWIDTH_MBPS: std::ops::RangeInclusive<u32> = 1..=300;

/// The wizard's answers as they arrive (untrusted).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DeployInput {
    pub region: String,
    pub flavor: String,
    /// System disk size; the image's minimum when absent.
    pub disk_gb: Option<u32>,
    pub vpc: String,
    pub subnet: String,
    pub security_group: String,
    /// Bandwidth of a public IP in Mbit/s; no public IP when absent.
    pub public_ip_mbps: Option<u32>,
    pub server_name: String,
    pub admin_password: String,
    /// The buyer accepted the image's license and the marketplace's terms of purchase.
    pub accept_agreement: bool,
}

/// A valid deployment request for one order of `count` servers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeploySpec {
    pub region: String,
    pub flavor: String,
    pub image_ref: String,
    pub disk_gb: u32,
    pub vpc: String,
    pub subnet: String,
    pub security_group: String,
    pub public_ip_mbps: Option<u32>,
    pub server_name: String,
}

impl DeploySpec {
    /// The names of `count` servers: the name itself for one, `name-1`, `name-2`, ... for more.
    pub fn server_names(&self, count: u32) -> Vec<String> {
        if count <= 1 {
            vec![self.server_name.clone()]
        } else {
            (1..=count).map(|i| format!("{}-{i}", self.server_name)).collect()
        }
    }
}

/// An administrator password that meets the cloud's rules: 8 to 26 characters, at least
/// three of upper case, lower case, digits and specials (`!@$%^-_=+[{}]:,./?`), and not
/// the user name `root` or `Administrator` forwards or backwards.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminPassword(String);

const SPECIALS: &str = "!@$%^-_=+[{}]:,./?";

impl AdminPassword {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let n = raw.chars().count();
        if !(8..=26).contains(&n) {
            return Err(FieldError::new("admin_password", "8 to 26 characters"));
        }
        if raw.chars().any(|c| !(c.is_ascii_alphanumeric() || SPECIALS.contains(c))) {
            return Err(FieldError::new("admin_password", format!("letters, digits and {SPECIALS} only")));
        }
        let classes = [
            raw.chars().any(|c| c.is_ascii_uppercase()),
            raw.chars().any(|c| c.is_ascii_lowercase()),
            raw.chars().any(|c| c.is_ascii_digit()),
            raw.chars().any(|c| SPECIALS.contains(c)),
        ];
        if classes.iter().filter(|c| **c).count() < 3 {
            return Err(FieldError::new(
                "admin_password",
                "use at least three of: upper-case letters, lower-case letters, digits, special characters",
            ));
        }
        let lower = raw.to_lowercase();
        for user in ["root", "administrator"] {
            let reversed: String = user.chars().rev().collect();
            if lower.contains(user) || lower.contains(&reversed) {
                return Err(FieldError::new("admin_password", "must not contain the user name, forwards or backwards"));
            }
        }
        Ok(Self(raw.to_owned()))
    }

    /// The password itself, for the compute provider only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for AdminPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminPassword(***)")
    }
}

fn name_ok(s: &str, max: usize) -> bool {
    let n = s.chars().count();
    (1..=max).contains(&n) && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

impl DeployInput {
    /// Checks every answer against the image and returns all problems at once.
    pub fn check(&self, image: &ImageSpec, count: u32) -> Result<(DeploySpec, AdminPassword), Vec<FieldError>> {
        let mut errors = Vec::new();
        if !image.regions.contains(&self.region) {
            errors.push(FieldError::new("deployment.region", format!("one of: {}", image.regions.join(", "))));
        }
        if !image.flavors.contains(&self.flavor) {
            errors.push(FieldError::new("deployment.flavor", format!("one of: {}", image.flavors.join(", "))));
        }
        let disk_gb = self.disk_gb.unwrap_or(image.min_disk_gb);
        if !(image.min_disk_gb..=MAX_DISK_GB).contains(&disk_gb) {
            errors.push(FieldError::new(
                "deployment.disk_gb",
                format!("between {} and {MAX_DISK_GB} GB for this image", image.min_disk_gb),
            ));
        }
        for (field, value) in [
            ("deployment.vpc", &self.vpc),
            ("deployment.subnet", &self.subnet),
            ("deployment.security_group", &self.security_group),
        ] {
            if !name_ok(value, 64) {
                errors.push(FieldError::new(field, "1 to 64 letters, digits, dots, dashes or underscores"));
            }
        }
        if let Some(mbps) = self.public_ip_mbps
            && !BANDWIDTH_MBPS.contains(&mbps)
        {
            errors.push(FieldError::new(
                "deployment.public_ip_mbps",
                format!("between {} and {} Mbit/s", BANDWIDTH_MBPS.start(), BANDWIDTH_MBPS.end()),
            ));
        }
        // Room for the "-10" suffix of several servers.
        if !name_ok(&self.server_name, 60) || self.server_name.starts_with(['-', '.']) {
            errors.push(FieldError::new("deployment.server_name", "1 to 60 letters, digits, dots, dashes or underscores"));
        }
        if !(1..=MAX_SERVERS).contains(&count) {
            errors.push(FieldError::new("quantity", format!("1 to {MAX_SERVERS} servers per order")));
        }
        let password = AdminPassword::parse(&self.admin_password).map_err(|e| e.within("deployment"));
        if let Err(e) = &password {
            errors.push(e.clone());
        }
        if !self.accept_agreement {
            errors.push(FieldError::new("deployment.accept_agreement", "accept the image's license and the terms of purchase"));
        }
        match password {
            Ok(password) if errors.is_empty() => Ok((
                DeploySpec {
                    region: self.region.clone(),
                    flavor: self.flavor.clone(),
                    image_ref: image.image_ref.clone(),
                    disk_gb,
                    vpc: self.vpc.clone(),
                    subnet: self.subnet.clone(),
                    security_group: self.security_group.clone(),
                    public_ip_mbps: self.public_ip_mbps,
                    server_name: self.server_name.clone(),
                },
                password,
            )),
            _ => Err(errors),
        }
    }
}

string_enum!(
    /// A deployed server's state: requested (waiting to be handed to the provider), creating,
    /// running, failed, released (deleted after the subscription ended or the order failed).
    ServerState {
        Requested => "requested",
        Creating => "creating",
        Running => "running",
        Failed => "failed",
        Released => "released",
    }
);

/// How a deployment of several servers stands, from their states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeploymentOutcome {
    /// Some server is still waiting or being created, and none failed.
    InProgress,
    /// Every server runs.
    Running,
    /// A server failed: the order cannot be delivered whole.
    Failed,
}

pub fn outcome(states: &[ServerState]) -> DeploymentOutcome {
    if states.contains(&ServerState::Failed) {
        DeploymentOutcome::Failed
    } else if !states.is_empty() && states.iter().all(|s| *s == ServerState::Running) {
        DeploymentOutcome::Running
    } else {
        DeploymentOutcome::InProgress
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> ImageSpec {
        ImageSpec {
            image_ref: "img-wordpress-6".into(),
            flavors: vec!["s6.large.2".into(), "c7.xlarge.4".into()],
            regions: vec!["cn-north-4".into()],
            min_disk_gb: 40,
        }
    }

    fn input() -> DeployInput {
        DeployInput {
            region: "cn-north-4".into(),
            flavor: "s6.large.2".into(),
            disk_gb: None,
            vpc: "vpc-default".into(),
            subnet: "subnet-a".into(),
            security_group: "sg-web".into(),
            public_ip_mbps: Some(5),
            server_name: "blog".into(),
            admin_password: "Str0ng!pass".into(),
            accept_agreement: true,
        }
    }

    #[test]
    fn a_complete_request_passes_with_the_images_defaults() {
        let (spec, password) = input().check(&image(), 2).unwrap();
        assert_eq!(spec.disk_gb, 40);
        assert_eq!(spec.image_ref, "img-wordpress-6");
        assert_eq!(spec.server_names(2), vec!["blog-1", "blog-2"]);
        assert_eq!(spec.server_names(1), vec!["blog"]);
        assert_eq!(password.expose(), "Str0ng!pass");
        assert_eq!(format!("{password:?}"), "AdminPassword(***)", "never printed");
    }

    #[test]
    fn every_problem_is_reported() {
        let bad = DeployInput {
            region: "mars-1".into(),
            flavor: "huge".into(),
            disk_gb: Some(10),
            vpc: "".into(),
            subnet: "a b".into(),
            security_group: "sg".into(),
            public_ip_mbps: Some(0),
            server_name: "-x".into(),
            admin_password: "short".into(),
            accept_agreement: false,
        };
        let errors = bad.check(&image(), 11).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_ref()).collect();
        for f in [
            "deployment.region",
            "deployment.flavor",
            "deployment.disk_gb",
            "deployment.vpc",
            "deployment.subnet",
            "deployment.public_ip_mbps",
            "deployment.server_name",
            "quantity",
            "deployment.admin_password",
            "deployment.accept_agreement",
        ] {
            assert!(fields.contains(&f), "{f} missing from {fields:?}");
        }
    }

    #[test]
    fn passwords_follow_the_clouds_rules() {
        for ok in ["Str0ng!pass", "abcDEF123", "x1-Y2_z3.w4"] {
            assert!(AdminPassword::parse(ok).is_ok(), "{ok}");
        }
        for bad in
            ["Ab1!", "alllowercase1", "ALLUPPER!!", "Root1234!", "Xtoor9876", "xAdministrator1", "空格Abc1234", "Abc 12345"]
        {
            assert!(AdminPassword::parse(bad).is_err(), "{bad}");
        }
        assert!(AdminPassword::parse(&"Aa1!".repeat(7)).is_err(), "too long");
    }

    #[test]
    fn a_deployment_fails_if_any_server_fails() {
        use ServerState::*;
        assert_eq!(outcome(&[Running, Running]), DeploymentOutcome::Running);
        assert_eq!(outcome(&[Running, Creating]), DeploymentOutcome::InProgress);
        assert_eq!(outcome(&[Requested, Failed]), DeploymentOutcome::Failed);
        assert_eq!(outcome(&[]), DeploymentOutcome::InProgress);
    }
}
