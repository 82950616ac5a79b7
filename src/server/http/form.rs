//! Typed form bodies. `Form<T>` reads `application/x-www-form-urlencoded` into a
//! `#[derive(Deserialize)]` struct, repeated keys (`id=3&id=5`, ticked checkboxes) into a
//! `Vec`; a body that does not fit the struct is answered 400 with a plain message.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

/// A form body, deserialised.
#[derive(Debug)]
pub struct Form<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Form<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let body = Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        parse(&body)
            .map(Form)
            .map_err(|e| (StatusCode::BAD_REQUEST, e).into_response())
    }
}

/// `body` as `T`, or why not (answered as a 400).
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_html_form::from_bytes(body).map_err(|e| format!("The form was not understood: {e}."))
}

/// Every field as posted, in order: for forms whose field names carry data
/// (`cond_2_field`, `col_3`, `cfg_email_host`).
#[derive(Debug, Default)]
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    /// The first value posted for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn from_body(body: &[u8]) -> Self {
        Fields(form_urlencoded::parse(body).into_owned().collect())
    }
}

impl<S: Send + Sync> FromRequest<S> for Fields {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let body = Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Fields::from_body(&body))
    }
}
