/// A boolean value Go's `strconv.ParseBool` would reject.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid boolean value {0:?}: expected one of 1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False"
)]
pub struct ParseBoolError(pub String);

/// Parses a boolean the way Go's `strconv.ParseBool` (and so pflag) does.
pub fn parse_go_bool(s: &str) -> Result<bool, ParseBoolError> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        other => Err(ParseBoolError(other.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_spellings_of_booleans_are_accepted() {
        for t in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_go_bool(t), Ok(true), "{t}");
        }
        for f in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_go_bool(f), Ok(false), "{f}");
        }
    }

    #[test]
    fn other_spellings_are_rejected() {
        for bad in ["yes", "", "tRUE", "2", "on"] {
            assert!(parse_go_bool(bad).is_err(), "{bad}");
        }
    }
}
