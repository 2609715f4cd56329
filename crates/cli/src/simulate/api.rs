//! The management API calls the simulator makes, over HTTP as any client
//! would: log in, read a device template, provision a device and read its
//! token. Every failure becomes one sentence naming what was asked.

use anyhow::{Result, anyhow, bail};
use reqwest::{Client, Response, StatusCode, Url};
use serde::Deserialize;
use serde_json::{Value, json};

/// What a datastream holds, as `GET /api/v1/device-templates/{id}` names it.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ValueType {
    Integer,
    Double,
    String,
    Enum,
}

/// A datastream of a template: the fields the simulator uses.
#[derive(Clone, Debug, Deserialize)]
pub struct Datastream {
    pub pin: u16,
    pub name: String,
    pub value_type: ValueType,
    #[serde(default)]
    pub enum_values: Vec<String>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub decimals: Option<u8>,
}

#[derive(Debug, Deserialize)]
pub struct Template {
    pub id: i64,
    pub name: String,
    pub datastreams: Vec<Datastream>,
}

/// A logged-in management API session.
pub struct Api {
    http: Client,
    base: Url,
    session: String,
    email: String,
}

/// The one-line reason of a failed request, down to its root cause
/// ("Connection refused"), which reqwest's own message hides.
pub fn transport_error(error: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = error;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    format!("{kind}: {cause}")
}

/// What a refusal says: the problem's `detail` (or `title`), else the body.
async fn refusal(response: Response) -> String {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let said = serde_json::from_str::<Value>(&text).ok().and_then(|body| {
        body.get("detail")
            .or_else(|| body.get("title"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    match said {
        Some(said) => format!("{said} ({})", status.as_u16()),
        None if text.trim().is_empty() => status.to_string(),
        None => format!("{} {}", status.as_u16(), text.trim()),
    }
}

impl Api {
    /// Logs in with `POST /api/v1/auth/login`.
    pub async fn login(http: Client, base: Url, email: &str, password: &str) -> Result<Api> {
        let url = base.join("api/v1/auth/login")?;
        let response = http
            .post(url)
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await
            .map_err(|e| {
                anyhow!(
                    "cannot reach the Arbor server at {base}: {}",
                    transport_error(&e)
                )
            })?;
        if !response.status().is_success() {
            bail!("cannot log in as {email}: {}", refusal(response).await);
        }
        #[derive(Deserialize)]
        struct LoggedIn {
            token: String,
        }
        let logged_in: LoggedIn = response.json().await.map_err(|e| {
            anyhow!("{base} answered the login with something else than Arbor's answer: {e}")
        })?;
        Ok(Api {
            http,
            base,
            session: logged_in.token,
            email: email.to_owned(),
        })
    }

    async fn send(&self, request: reqwest::RequestBuilder, what: &str) -> Result<Response> {
        request
            .bearer_auth(&self.session)
            .send()
            .await
            .map_err(|e| anyhow!("cannot {what}: {}", transport_error(&e)))
    }

    /// The template with its datastreams.
    pub async fn template(&self, id: i64) -> Result<Template> {
        let url = self.base.join(&format!("api/v1/device-templates/{id}"))?;
        let what = format!("read device template {id}");
        let response = self.send(self.http.get(url), &what).await?;
        match response.status() {
            StatusCode::OK => Ok(response.json().await?),
            StatusCode::NOT_FOUND => bail!(
                "device template {id} does not exist or is not visible to {}",
                self.email
            ),
            _ => bail!("cannot {what}: {}", refusal(response).await),
        }
    }

    /// Provisions a device of `template` (in `org`, else the org the user
    /// acts in) and returns its auth token.
    pub async fn provision(&self, name: &str, template: i64, org: Option<i64>) -> Result<String> {
        let url = self.base.join("api/v1/devices")?;
        let mut body = json!({ "name": name, "template_id": template });
        if let Some(org) = org {
            body["org_id"] = json!(org);
        }
        let what = format!("provision device {name:?}");
        let response = self.send(self.http.post(url).json(&body), &what).await?;
        if response.status() != StatusCode::CREATED {
            let status = response.status();
            let said = refusal(response).await;
            let hint = if status == StatusCode::CONFLICT {
                format!(
                    "; enable the template for the org first: \
                     PUT /api/v1/device-templates/{template}/orgs/<org id>"
                )
            } else {
                String::new()
            };
            bail!("cannot {what}: {said}{hint}");
        }
        #[derive(Deserialize)]
        struct Created {
            id: i64,
            token: Option<String>,
        }
        let created: Created = response.json().await?;
        match created.token {
            Some(token) => Ok(token),
            None => self.token(created.id).await,
        }
    }

    /// A device's auth token (`GET /api/v1/devices/{id}/auth-token`).
    async fn token(&self, device: i64) -> Result<String> {
        let url = self
            .base
            .join(&format!("api/v1/devices/{device}/auth-token"))?;
        let what = format!("read the auth token of device {device}");
        let response = self.send(self.http.get(url), &what).await?;
        if !response.status().is_success() {
            bail!(
                "cannot {what} (needs auth_tokens.edit): {}",
                refusal(response).await
            );
        }
        #[derive(Deserialize)]
        struct Token {
            token: String,
        }
        Ok(response.json::<Token>().await?.token)
    }
}
