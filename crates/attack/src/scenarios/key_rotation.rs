//! (d) A signing-key rotation (scripts/rotate-signing-key.sh publish, activate, retire) under the
//! legitimate loop. The tool keeps the old key's PEM and mints its own tokens with it, with the
//! header and claims of a real token (fresh `iat`, `exp`, `jti`). Control: before retirement the
//! resource server accepts them. After `retire`, they must be refused (401 `invalid_token`)
//! within the bound, and stay refused.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value};

use super::{Ctx, Scenario};
use crate::cli::RotationArgs;
use crate::error::{Context, Error};
use crate::http::Answer;
use crate::oauth;
use crate::report::{tenths, Report};
use test_client::describe;

const POLL: Duration = Duration::from_millis(200);
/// Once refused, the old key's tokens are watched this long more: a refusal must last.
const CONFIRM: Duration = Duration::from_secs(2);

impl Scenario for RotationArgs {
    const NAME: &str = "key-rotation";

    async fn attack(&self, ctx: &Ctx, report: &mut Report) -> Result<(), Error> {
        let dir = &self.keys_dir;
        let active = dir.join("ACTIVE");
        let old_name = std::fs::read_to_string(&active)
            .context(format!("cannot read {}", active.display()))?
            .trim()
            .to_owned();
        let old_pem =
            std::fs::read(dir.join(&old_name)).context(format!("cannot read {old_name}"))?;
        let real = oauth::real_token(&ctx.legit, &ctx.authorization_server)
            .await
            .context("a real token")?;
        let template = Template::of(&real)?;
        let old_key = template.key(&old_pem)?;
        let kid = template
            .header
            .kid
            .clone()
            .ok_or("the real token has no kid")?;
        report.figure("old_kid", kid.clone(), "");
        let forger = Forger {
            client: ctx.attacker()?,
            resource_server: &ctx.resource_server,
            template: &template,
            key: &old_key,
        };
        forger
            .expect_accepted(
                "before the rotation: the minted token is wrong, the proof would be void",
            )
            .await?;

        let script = Script {
            path: &self.rotate_script,
            dir,
            algorithm: template.algorithm(),
        };
        let new_name = script.run(&["publish"]).await?;
        tokio::time::sleep(Duration::from_secs(self.publish_wait_seconds)).await;
        script.run(&["activate", &new_name]).await?;
        tokio::time::sleep(Duration::from_secs(self.retire_wait_seconds)).await;
        forger
            .expect_accepted("after activation, before retirement (the control)")
            .await?;
        report.figure("controls_accepted", 2, "");

        // Watched while the script runs: `retire` returns only once its wait for the resource
        // servers is over, and the refusal must come within the bound, and before that return.
        let retired = Instant::now();
        let bound = Duration::from_secs(self.retire_bound_seconds);
        let retiring = async {
            let done = script.run(&["retire", &old_name]).await;
            (done, retired.elapsed())
        };
        let ((done, script_took), watch) = tokio::join!(
            retiring,
            watch_retirement(ctx, &forger, &kid, retired, bound)
        );
        done?;
        let watch = watch?;
        report.figure("retire_script_took", tenths(script_took), "s");
        report.bound(watch.refused_at.is_some_and(|at| at <= script_took), || {
            "rotate-signing-key.sh retire returned before the retired key was refused".to_owned()
        });
        let seconds = |at: Option<Duration>| match at {
            Some(at) => Value::from(tenths(at)),
            None => Value::from(format!("not within {}", self.retire_bound_seconds)),
        };
        report.figure(
            "jwks_without_old_kid_after",
            seconds(watch.unpublished_at),
            "s",
        );
        report.figure("refused_after", seconds(watch.refused_at), "s");
        report.bound(watch.refused_at.is_some_and(|at| at <= bound), || {
            format!(
                "a token signed by the retired key was still accepted {} s after its retirement",
                self.retire_bound_seconds
            )
        });
        report.bound(watch.accepted_again == 0, || {
            let times = watch.accepted_again;
            format!("a token of the retired key was accepted again {times} times after a refusal")
        });
        if let Some(answer) = watch.other {
            report.fail(format!("a token of the retired key was answered {answer}"));
        }
        Ok(())
    }
}

/// What became of the retired key, from its retirement on.
struct Watch {
    /// When its tokens were first refused.
    refused_at: Option<Duration>,
    /// When the authorization server's JWKS stopped listing it.
    unpublished_at: Option<Duration>,
    /// Its tokens accepted after a first refusal.
    accepted_again: u32,
    /// An answer that is neither an acceptance nor a refusal.
    other: Option<String>,
}

/// Polls a fresh token of the key retired at `retired` (and the JWKS) until its refusal has
/// lasted [`CONFIRM`] or `bound` has passed.
async fn watch_retirement(
    ctx: &Ctx,
    forger: &Forger<'_>,
    kid: &str,
    retired: Instant,
    bound: Duration,
) -> Result<Watch, Error> {
    let mut watch = Watch {
        refused_at: None,
        unpublished_at: None,
        accepted_again: 0,
        other: None,
    };
    loop {
        let since = retired.elapsed();
        if watch.unpublished_at.is_none() && !published(ctx, &forger.client, kid).await? {
            watch.unpublished_at = Some(since);
        }
        match forger.call().await? {
            Verdict::Accepted if watch.refused_at.is_some() => watch.accepted_again += 1,
            Verdict::Accepted => {}
            Verdict::Refused => {
                watch.refused_at.get_or_insert(since);
            }
            Verdict::Other(answer) => {
                watch.other = Some(answer);
                return Ok(watch);
            }
        }
        let confirmed = watch.refused_at.is_some_and(|at| since >= at + CONFIRM);
        if confirmed || since >= bound {
            return Ok(watch);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The header and claims of a real token, to mint look-alikes with another key.
struct Template {
    header: Header,
    claims: Map<String, Value>,
    lifetime: u64,
    /// The endpoint (`aud`'s path) and user (`sub`) the token is for.
    path: String,
    user: String,
}

impl Template {
    fn of(token: &str) -> Result<Self, Error> {
        let header = jsonwebtoken::decode_header(token).context("the real token's header")?;
        let payload = token
            .split('.')
            .nth(1)
            .ok_or("the real token is not a JWS")?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .context("the real token's payload")?;
        let claims: Map<String, Value> =
            serde_json::from_slice(&payload).context("the real token's claims")?;
        let number = |name: &str| claims.get(name).and_then(Value::as_u64);
        let text = |name: &str| claims.get(name).and_then(Value::as_str);
        let (Some(iat), Some(exp), Some(aud), Some(sub)) =
            (number("iat"), number("exp"), text("aud"), text("sub"))
        else {
            return Err(format!("the real token lacks iat, exp, aud or sub: {claims:?}").into());
        };
        let path = url::Url::parse(aud)
            .context("the real token's aud")?
            .path()
            .to_owned();
        Ok(Self {
            lifetime: exp.saturating_sub(iat),
            path,
            user: sub.to_owned(),
            header,
            claims,
        })
    }

    fn algorithm(&self) -> String {
        format!("{:?}", self.header.alg)
    }

    fn key(&self, pem: &[u8]) -> Result<EncodingKey, Error> {
        let key = match self.header.alg {
            Algorithm::EdDSA => EncodingKey::from_ed_pem(pem),
            Algorithm::ES256 => EncodingKey::from_ec_pem(pem),
            Algorithm::RS256 => EncodingKey::from_rsa_pem(pem),
            other => return Err(format!("tokens signed with {other:?}: no key type known").into()),
        };
        key.context("the old key's PEM")
    }

    /// A token like the real one, issued now.
    fn mint(&self, key: &EncodingKey) -> Result<String, Error> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .context("the clock")?
            .as_secs();
        let mut claims = self.claims.clone();
        claims.insert("iat".into(), now.into());
        claims.insert("exp".into(), (now + self.lifetime).into());
        claims.insert("jti".into(), uuid::Uuid::new_v4().to_string().into());
        jsonwebtoken::encode(&self.header, &claims, key).context("minting a token")
    }
}

enum Verdict {
    Accepted,
    Refused,
    Other(String),
}

/// Sends tokens minted with one key to the resource server.
struct Forger<'a> {
    client: reqwest::Client,
    resource_server: &'a str,
    template: &'a Template,
    key: &'a EncodingKey,
}

impl Forger<'_> {
    /// 200 with the endpoint's answer, or 401 `invalid_token`; anything else is described.
    async fn call(&self) -> Result<Verdict, Error> {
        let token = self.template.mint(self.key)?;
        let url = format!(
            "{}{}?user={}",
            self.resource_server, self.template.path, self.template.user
        );
        let response = self
            .client
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .map_err(|err| describe(&err))
            .context("the resource server")?;
        if response.status() != reqwest::StatusCode::OK {
            let answer = Answer::read(response)
                .await
                .context("the resource server")?;
            return Ok(match answer.is(401, "invalid_token") {
                true => Verdict::Refused,
                false => Verdict::Other(answer.to_string()),
            });
        }
        let body: Value = response.json().await.context("the resource server's 200")?;
        let endpoint = self.template.path.trim_start_matches('/');
        Ok(match body.get(endpoint) {
            Some(_) => Verdict::Accepted,
            None => Verdict::Other(format!("200 without the endpoint's answer: {body}")),
        })
    }

    async fn expect_accepted(&self, when: &str) -> Result<(), Error> {
        match self.call().await? {
            Verdict::Accepted => Ok(()),
            Verdict::Refused => Err(format!("a token of the old key was refused {when}").into()),
            Verdict::Other(answer) => {
                Err(format!("a token of the old key was answered {answer} {when}").into())
            }
        }
    }
}

/// Whether the authorization server's JWKS still lists `kid`.
async fn published(ctx: &Ctx, client: &reqwest::Client, kid: &str) -> Result<bool, Error> {
    let jwks: Value = client
        .get(format!(
            "{}/.well-known/jwks.json",
            ctx.authorization_server
        ))
        .send()
        .await
        .map_err(|err| describe(&err))
        .context("the JWKS")?
        .json()
        .await
        .context("the JWKS")?;
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("a JWKS without keys")?;
    Ok(keys
        .iter()
        .any(|key| key.get("kid").and_then(Value::as_str) == Some(kid)))
}

/// scripts/rotate-signing-key.sh on the server's key directory.
struct Script<'a> {
    path: &'a Path,
    dir: &'a Path,
    /// SIGNING_ALGORITHM for a new key: the type of the real token's.
    algorithm: String,
}

impl Script<'_> {
    /// Runs one step; its last line of output (`publish` prints the new key's name).
    async fn run(&self, step: &[&str]) -> Result<String, Error> {
        let output = tokio::process::Command::new("bash")
            .arg(self.path)
            .arg(self.dir)
            .args(step)
            .env("SIGNING_ALGORITHM", &self.algorithm)
            .output()
            .await
            .context(format!("cannot run {}", self.path.display()))?;
        if !output.status.success() {
            return Err(format!(
                "{} {}: {}: {}",
                self.path.display(),
                step.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )
            .into());
        }
        Ok(String::from_utf8_lossy(&output.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .to_owned())
    }
}
