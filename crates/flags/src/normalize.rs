use std::ffi::OsString;

/// Rewrites a Go-style argv into one clap understands.
///
/// Every argument after the program name that is longer than two characters and starts with a
/// single `-` gains a second dash (`-port=1` → `--port=1`), exactly the rewrite upstream applies
/// before handing argv to pflag. A bare `--` ends flag parsing: it and everything after it pass
/// through untouched. Arguments that are not valid UTF-8 are passed through as they are.
pub fn normalize<I, T>(args: I) -> Vec<OsString>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let mut out = Vec::new();
    let mut iter = args.into_iter().map(Into::into);
    if let Some(program) = iter.next() {
        out.push(program);
    }
    let mut flags_done = false;
    for arg in iter {
        if flags_done {
            out.push(arg);
            continue;
        }
        match arg.to_str() {
            Some("--") => {
                flags_done = true;
                out.push(arg);
            }
            Some(s) if s.len() > 2 && s.starts_with('-') && !s.starts_with("--") => {
                let mut doubled = OsString::from("-");
                doubled.push(s);
                out.push(doubled);
            }
            _ => out.push(arg),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(args: &[&str]) -> Vec<String> {
        normalize(args.iter().copied())
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn single_dash_long_flags_gain_a_second_dash() {
        assert_eq!(
            norm(&[
                "sentry",
                "-port=1",
                "-mode",
                "kubernetes",
                "--log-level",
                "debug"
            ]),
            [
                "sentry",
                "--port=1",
                "--mode",
                "kubernetes",
                "--log-level",
                "debug"
            ]
        );
    }

    #[test]
    fn short_flags_values_and_double_dash_tail_are_untouched() {
        assert_eq!(
            norm(&["x", "-h", "-1", "value", "--", "-after"]),
            ["x", "-h", "-1", "value", "--", "-after"]
        );
    }

    #[test]
    fn the_program_name_is_never_rewritten() {
        assert_eq!(norm(&["-weird-name", "-a=b"]), ["-weird-name", "--a=b"]);
    }
}
