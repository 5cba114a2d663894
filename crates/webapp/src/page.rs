//! The two HTML pages a browser's login can end on: the answer with the flow's steps, or the
//! refusal. No script and no external asset (the `Content-Security-Policy` of [`html`] allows
//! neither); every value is escaped by `maud`.

use std::time::Duration;

use axum::http::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY};
use axum::http::HeaderValue;
use axum::response::Response;
use maud::{html, Markup, DOCTYPE};
use oauth::{ErrorBody, Scope, UserName};

/// True when the caller prefers a page to JSON (a browser's `Accept: text/html,…`).
pub fn wants_html(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get_all(axum::http::header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|accept| accept.contains("text/html"))
}

/// One step of the flow as the page shows it.
pub struct StepTime {
    pub name: &'static str,
    pub what: &'static str,
    pub took: Duration,
}

/// The answer of `scope` for `user` (the resource server's JSON, shown as sent) and the steps.
pub fn answer(scope: Scope, user: &UserName, json: &str, steps: &[StepTime]) -> Markup {
    let title = format!("{scope} for {user}");
    layout(
        &title,
        html! {
            h1 { (title) }
            pre { (json) }
            h2 { "How it was obtained" }
            ol {
                @for step in steps {
                    li {
                        strong { (step.name) } " — " (step.what) " "
                        span.took { (format!("{:.1} ms", step.took.as_secs_f64() * 1000.0)) }
                    }
                }
            }
            p { "The access token was good for this endpoint and this user only, for five seconds; \
                 the webapp did not keep it." }
        },
    )
}

/// A refused or failed login: the error code and what went wrong.
pub fn refusal(status: u16, body: &ErrorBody) -> Markup {
    layout(
        "Login refused",
        html! {
            h1 { "Login refused" }
            p { "HTTP " (status) ": " code { (body.error.as_str()) } }
            p { (body.error_description) }
            @if let Some(step) = &body.step {
                p { "Failed step: " (step) }
            }
            p { "No token was issued to this browser. Start again from a login link." }
        },
    )
}

fn layout(title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { "body{font-family:sans-serif;max-width:40em;margin:2em auto;padding:0 1em}\
                         pre{background:#f4f4f4;padding:1em;overflow-x:auto}.took{color:#555}" }
            }
            body { (content) }
        }
    }
}

/// `response` with `page` as its HTML body, its status and headers kept, and the headers a page
/// needs: nothing runs or loads from elsewhere, and the callback URL (its code spent, but still)
/// is sent to no one as a referrer.
pub fn html(mut response: Response, page: Markup) -> Response {
    *response.body_mut() = axum::body::Body::from(page.into_string());
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

#[cfg(test)]
mod tests {
    use oauth::ErrorCode;

    use super::*;

    #[test]
    fn the_answer_page_shows_the_json_and_every_step_escaped() {
        let user = UserName::parse("alice").unwrap();
        let page = answer(
            Scope::EpochTime,
            &user,
            r#"{"epoch_time":1,"user":"alice","x":"<script>"}"#,
            &[StepTime {
                name: "token",
                what: "POST /token",
                took: Duration::from_micros(1500),
            }],
        )
        .into_string();
        assert!(page.contains("<h1>epoch_time for alice</h1>"), "{page}");
        assert!(page.contains("&quot;epoch_time&quot;:1"), "{page}");
        assert!(page.contains("&lt;script&gt;"), "{page}");
        assert!(!page.contains("<script"), "{page}");
        assert!(page.contains("1.5 ms"), "{page}");
    }

    #[test]
    fn the_refusal_page_names_the_error() {
        let body = ErrorBody::new(ErrorCode::InvalidRequest, "the state <is> not ours");
        let page = refusal(400, &body).into_string();
        assert!(page.contains("<code>invalid_request</code>"), "{page}");
        assert!(page.contains("the state &lt;is&gt; not ours"), "{page}");
    }

    #[test]
    fn a_browser_asks_for_html_and_curl_does_not() {
        let mut headers = axum::http::HeaderMap::new();
        assert!(!wants_html(&headers));
        headers.insert(axum::http::header::ACCEPT, HeaderValue::from_static("*/*"));
        assert!(!wants_html(&headers));
        headers.insert(
            axum::http::header::ACCEPT,
            HeaderValue::from_static("text/html,application/xhtml+xml,*/*;q=0.8"),
        );
        assert!(wants_html(&headers));
    }
}
