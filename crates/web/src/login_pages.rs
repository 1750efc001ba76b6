//! The login page, the login itself and the logout, when the web manager has users.

use std::sync::Arc;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::login::{Logins, COOKIE};

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

/// `POST /login`: a session cookie and back to the page, or the form again (401), after a
/// delay that grows with the client's recent failures.
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
    actix_web::rt::time::sleep(logins.delay_for(client)).await;
    let Credentials { name, password } = credentials.into_inner();
    // Argon2 takes tens of milliseconds: off the server's thread.
    let checked = {
        let logins = logins.clone();
        actix_web::rt::task::spawn_blocking(move || logins.log_in(client, &name, &password)).await
    };
    match checked {
        Ok(Some(token)) => HttpResponse::SeeOther()
            .insert_header(("location", "/"))
            .cookie(session_cookie(token))
            .finish(),
        _ => {
            tracing::warn!(%client, "failed web login");
            HttpResponse::Unauthorized()
                .content_type("text/html; charset=utf-8")
                .body(login_page("Wrong user or password."))
        }
    }
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
