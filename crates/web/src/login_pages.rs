//! The login page, the login itself and the logout, when the web manager has users.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::login::COOKIE;
use crate::server::State;

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
pub async fn form(state: web::Data<State>) -> HttpResponse {
    if state.logins.is_none() {
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
    state: web::Data<State>,
    credentials: web::Form<Credentials>,
) -> HttpResponse {
    let Some(logins) = state.logins.clone() else {
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
            .insert_header((
                "set-cookie",
                format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"),
            ))
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
pub async fn log_out(request: HttpRequest, state: web::Data<State>) -> HttpResponse {
    if let Some(logins) = &state.logins {
        logins.log_out(cookie(&request));
    }
    HttpResponse::SeeOther()
        .insert_header(("location", "/login"))
        .insert_header((
            "set-cookie",
            format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
        ))
        .finish()
}

/// The request's `Cookie` header.
pub fn cookie(request: &HttpRequest) -> Option<&str> {
    request
        .headers()
        .get("cookie")
        .and_then(|value| value.to_str().ok())
}

fn see_other(location: &'static str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("location", location))
        .finish()
}
