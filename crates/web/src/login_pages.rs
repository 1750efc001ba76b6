//! The login page, the login itself and the logout, when the web manager has users.

use std::sync::Arc;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::login::{Logins, Refused, COOKIE};

/// The web manager's users, when a login is required: what these pages need of its state.
#[derive(Clone)]
pub struct Gate(pub Option<Arc<Logins>>);

/// The login form, its style inline like the page's.
fn login_page(message: &str) -> String {
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Janitoo manager: log in</title>
<style>body{{font-family:system-ui,sans-serif;display:flex;justify-content:center;margin-top:15vh}}
form{{display:flex;flex-direction:column;gap:.6em;min-width:16em}}p{{color:#b00}}</style></head>
<body><form method="post" action="/login"><h1>Janitoo manager</h1><p id="message">{message}</p>
<label>User <input id="name" name="name" autocomplete="username" required autofocus></label>
<label>Password <input id="password" name="password" type="password" autocomplete="current-password" required></label>
<button id="login" type="submit">Log in</button></form></body></html>"#
    )
}

/// `GET /login`.
pub async fn form(gate: web::Data<Gate>) -> HttpResponse {
    if gate.0.is_none() {
        return see_other("/");
    }
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(login_page(""))
}

/// The fields of the login form.
#[derive(Deserialize)]
pub struct Credentials {
    name: String,
    password: String,
}

/// `POST /login`: a session cookie and back to the page; or the form again: 401 for a wrong
/// user or password, 429 while another login from the same address is checked or when too
/// many have failed lately, 503 when every password check is busy. A login from an address
/// with recent failures is checked after a delay.
pub async fn log_in(
    request: HttpRequest,
    gate: web::Data<Gate>,
    credentials: web::Form<Credentials>,
) -> HttpResponse {
    let Some(logins) = gate.0.clone() else {
        return see_other("/");
    };
    let client = request
        .peer_addr()
        .map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |addr| addr.ip());
    let Credentials { name, password } = credentials.into_inner();
    let refused = match logins.log_in(client, &name, password).await {
        Ok(token) => {
            return HttpResponse::SeeOther()
                .insert_header(("location", "/"))
                .cookie(session_cookie(token))
                .finish()
        }
        Err(refused) => refused,
    };
    let mut response = match refused {
        Refused::Wrong => {
            tracing::warn!(%client, "failed web login");
            return HttpResponse::Unauthorized()
                .content_type("text/html; charset=utf-8")
                .body(login_page("Wrong user or password."));
        }
        Refused::Busy => HttpResponse::TooManyRequests(),
        Refused::Spent { retry_after } => {
            tracing::warn!(%client, "web login refused: too many failed logins lately");
            let mut response = HttpResponse::TooManyRequests();
            response.insert_header(("retry-after", retry_after.as_secs().max(1).to_string()));
            response
        }
        Refused::Saturated => HttpResponse::ServiceUnavailable(),
    };
    let message = match refused {
        Refused::Busy => "Another login from here is being checked: try again.",
        Refused::Spent { .. } => "Too many failed logins lately: try again later.",
        _ => "Busy: try again in a moment.",
    };
    response
        .content_type("text/html; charset=utf-8")
        .body(login_page(message))
}

/// `POST /logout`.
pub async fn log_out(request: HttpRequest, gate: web::Data<Gate>) -> HttpResponse {
    if let Some(logins) = &gate.0 {
        logins.log_out(session_token(&request).as_deref());
    }
    let mut response = HttpResponse::SeeOther()
        .insert_header(("location", "/login"))
        .finish();
    let _ = response.add_removal_cookie(&session_cookie(String::new()));
    response
}

/// The session cookie: sent back to this server only, never to scripts or other sites.
fn session_cookie(token: String) -> Cookie<'static> {
    Cookie::build(COOKIE, token)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .finish()
}

/// The session token a request carries in its cookie.
pub fn session_token(request: &HttpRequest) -> Option<String> {
    request
        .cookie(COOKIE)
        .map(|cookie| cookie.value().to_owned())
}

fn see_other(location: &'static str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("location", location))
        .finish()
}
