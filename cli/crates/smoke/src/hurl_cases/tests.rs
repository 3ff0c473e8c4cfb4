use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use super::*;

/// A tiny HTTP server on 127.0.0.1: `/ok` answers 200 `{"status":"ok"}`, `/echo-auth`
/// answers 500 with the request's Authorization header in its body, anything else 404.
fn server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            reader.read_line(&mut request).unwrap();
            let mut auth = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("authorization")
                {
                    auth = value.trim().to_owned();
                }
            }
            let path = request.split(' ').nth(1).unwrap_or("/").to_owned();
            let (status, body) = match path.as_str() {
                "/ok" => ("200 OK", r#"{"status":"ok"}"#.to_owned()),
                "/echo-auth" => (
                    "500 Internal Server Error",
                    format!(r#"{{"saw":"{auth}"}}"#),
                ),
                _ => ("404 Not Found", "{}".to_owned()),
            };
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}")
}

fn file(text: &str) -> CaseFile {
    parse(
        Path::new("tests/smoke/smoke/profile.hurl"),
        "tests/smoke/smoke/profile.hurl".into(),
        Suite::Smoke,
        text.into(),
    )
    .unwrap()
}

const CASES: &str = "\
# service: profile
# health, directly
GET {{base}}/ok
HTTP 200
[Asserts]
jsonpath \"$.status\" == \"ok\"

GET {{base}}/missing
HTTP 200

# a secret must never show
GET {{base}}/echo-auth
Authorization: Bearer {{token_admin}}
HTTP 200

# needs a forged token
GET {{base}}/ok
Authorization: Bearer {{bad_token_expired}}
HTTP 200
";

#[test]
fn entries_are_cases_named_by_their_comment_or_request_line() {
    let f = file(CASES);
    let names: Vec<String> = f.entries.iter().map(|e| f.case_name(e)).collect();
    assert_eq!(
        names,
        [
            "profile: health, directly",
            "profile: GET {{base}}/missing",
            "profile: a secret must never show",
            "profile: needs a forged token",
        ]
    );
    assert_eq!(
        f.entries.iter().map(|e| e.line).collect::<Vec<_>>(),
        [3, 8, 12, 17]
    );
    assert_eq!(f.service.as_deref(), Some("profile"));
    assert!(f.entries[2].variables.contains("token_admin"));
    assert!(!f.entries[0].variables.contains("token_admin"));
}

#[test]
fn a_syntax_error_names_file_and_line() {
    let err = parse(
        Path::new("x.hurl"),
        "tests/smoke/auth/x.hurl".into(),
        Suite::Auth,
        "GET http://a/\nHTTP 200\n\nGET http://b/\nHTTP 2x0\n".into(),
    )
    .unwrap_err();
    assert_eq!(err.file, "tests/smoke/auth/x.hurl");
    assert_eq!(err.line, 5, "{err}");
    let empty = parse(
        Path::new("e.hurl"),
        "e.hurl".into(),
        Suite::Auth,
        "# nothing\n".into(),
    );
    assert!(empty.unwrap_err().message.contains("no request"));
}

#[test]
fn a_run_gives_one_result_per_entry_with_masked_details_and_skips() {
    let base = server();
    let f = file(CASES);
    let token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJl";
    let mut vars = Variables::default();
    vars.plain.insert("base".into(), base.clone());
    vars.secrets.insert("token_admin".into(), token.into());
    vars.unavailable.insert(
        "bad_token_expired".into(),
        "needs the IdP's private key".into(),
    );
    let results = f.run(&vars);
    assert_eq!(results.len(), 4);
    assert_eq!(results[0].outcome, Outcome::Passed, "{:?}", results[0]);
    let Outcome::Failed(why) = &results[1].outcome else {
        panic!("{:?}", results[1]);
    };
    assert!(
        why.contains("profile.hurl:9"),
        "the status line is named: {why}"
    );
    let detail = results[1].detail.as_deref().unwrap();
    assert!(
        detail.contains("response: 404") && detail.contains("/missing"),
        "{detail}"
    );
    // The server echoed the token: neither the message nor the detail carries it.
    assert!(results[2].outcome.failed());
    let shown = format!("{:?}", results[2]);
    assert!(
        !shown.contains(token) && !shown.contains("c2lnbmF0dXJl"),
        "{shown}"
    );
    assert!(shown.contains("***"), "{shown}");
    assert_eq!(
        results[3].outcome,
        Outcome::Skipped("needs the IdP's private key".into())
    );
    assert_eq!(results[0].source, "tests/smoke/smoke/profile.hurl:3");
}

#[test]
fn load_reads_suite_folders_and_refuses_an_unknown_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("smoke")).unwrap();
    std::fs::write(dir.path().join("smoke/a.hurl"), "GET http://x/\nHTTP 200\n").unwrap();
    std::fs::write(dir.path().join("smoke/notes.md"), "not a case").unwrap();
    let files = load(dir.path(), dir.path()).unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].display, "smoke/a.hurl");
    std::fs::create_dir_all(dir.path().join("smokey")).unwrap();
    let err = load(dir.path(), dir.path()).unwrap_err();
    assert!(err.message.contains("`smokey` is not a suite"), "{err}");
}
