use std::sync::Mutex;

use tokio::time::Instant;

use super::*;

fn request() -> SignCertificateRequest {
    SignCertificateRequest {
        id: "dapr-placement".to_owned(),
        ..Default::default()
    }
}

/// Records each attempt's `x-retry-attempty` header and start time, answering with `answers`.
async fn run(
    answers: Vec<Result<SignCertificateResponse, tonic::Status>>,
    hang: bool,
) -> (
    Result<SignCertificateResponse, tonic::Status>,
    Vec<(Option<String>, Duration)>,
) {
    let start = Instant::now();
    let seen = Mutex::new(Vec::new());
    let answers = Mutex::new(answers.into_iter());
    let result = sign_with_retry(&request(), |req| {
        let header = req
            .metadata()
            .get(RETRY_ATTEMPT_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        seen.lock().unwrap().push((header, start.elapsed()));
        let answer = answers.lock().unwrap().next();
        async move {
            if hang {
                std::future::pending::<()>().await;
            }
            answer.unwrap_or_else(|| Err(tonic::Status::internal("script exhausted")))
        }
    })
    .await;
    (result, seen.into_inner().unwrap())
}

#[tokio::test(start_paused = true)]
async fn unavailable_is_retried_with_attempt_metadata_and_a_short_linear_backoff() {
    let (result, seen) = run(
        vec![
            Err(tonic::Status::unavailable("down")),
            Err(tonic::Status::resource_exhausted("busy")),
            Ok(SignCertificateResponse::default()),
        ],
        false,
    )
    .await;
    assert!(result.is_ok());
    let headers: Vec<_> = seen.iter().map(|(h, _)| h.clone()).collect();
    assert_eq!(headers, [None, Some("1".to_owned()), Some("2".to_owned())]);
    for (i, (_, at)) in seen.iter().enumerate() {
        let base = RETRY_BACKOFF * u32::try_from(i).unwrap();
        assert!(
            *at >= base.mul_f64(0.89) && *at <= base.mul_f64(1.11),
            "{i}: {at:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn other_codes_fail_at_once() {
    let (result, seen) = run(vec![Err(tonic::Status::permission_denied("no"))], false).await;
    assert_eq!(result.unwrap_err().code(), Code::PermissionDenied);
    assert_eq!(seen.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn five_attempts_is_the_limit_and_the_last_error_is_returned() {
    let answers = (0..10)
        .map(|i| Err(tonic::Status::unavailable(format!("down {i}"))))
        .collect();
    let (result, seen) = run(answers, false).await;
    assert_eq!(seen.len(), 5);
    assert_eq!(result.unwrap_err().message(), "down 4");
}

#[tokio::test(start_paused = true)]
async fn each_attempt_gets_three_seconds_and_a_timed_out_attempt_is_retried() {
    let (result, seen) = run(Vec::new(), true).await;
    assert_eq!(seen.len(), 5);
    assert_eq!(result.unwrap_err().code(), Code::DeadlineExceeded);
    let last = seen.last().unwrap().1;
    assert!(last >= ATTEMPT_TIMEOUT * 4 && last < ATTEMPT_TIMEOUT * 4 + Duration::from_secs(1));
}

#[test]
fn the_dial_backoff_grows_by_1_6_up_to_two_minutes() {
    assert_eq!(dial_backoff(0), Duration::from_secs(1));
    assert_eq!(dial_backoff(1), Duration::from_millis(1600));
    assert_eq!(dial_backoff(2), Duration::from_millis(2560));
    assert_eq!(dial_backoff(20), Duration::from_secs(120));
    assert_eq!(dial_backoff(u32::MAX), Duration::from_secs(120));
}

#[test]
fn jitter_stays_within_its_fraction() {
    for _ in 0..100 {
        let d = jittered(Duration::from_secs(10), 0.2);
        assert!(
            d >= Duration::from_secs(8) && d <= Duration::from_secs(12),
            "{d:?}"
        );
    }
}
