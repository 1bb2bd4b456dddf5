//! Mobile number ranges per country, for `pbxctl gsm route --mobile on`: calls to mobile
//! numbers of the site's own country go out over the module (cheaper from a mobile SIM).
//!
//! The ranges are the national numbering plans' mobile blocks, as prefixes of the national
//! significant number (NSN, the number without country code or trunk prefix 0). Where the
//! plan does not separate mobile numbers (the NANP: US and Canada give mobile phones
//! ordinary geographic numbers) the setting is refused rather than guessed.

/// Why mobile routing cannot be used for a country.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MobileRangesError {
    /// The numbering plan gives mobiles geographic numbers.
    #[error(
        "mobile numbers cannot be told apart in country code +{0} (mobiles have geographic \
         numbers); use --prefix or --policy instead of --mobile"
    )]
    Indistinguishable(String),
    /// No ranges known for this country.
    #[error(
        "mobile number ranges for country code +{0} are not known (known: {KNOWN}); use \
         --prefix or --policy instead of --mobile"
    )]
    Unknown(String),
}

/// The countries with known ranges, for messages.
const KNOWN: &str = "+49 DE, +43 AT, +41 CH, +44 GB, +33 FR, +31 NL";

/// Mobile NSN prefixes by country code (digits, no `+`).
const RANGES: &[(&str, &[&str])] = &[
    // Germany (BNetzA): 015x, 016x, 017x.
    ("49", &["15", "16", "17"]),
    // Austria (RTR): 0650 to 0699.
    ("43", &["65", "66", "67", "68", "69"]),
    // Switzerland (BAKOM): 075 to 079.
    ("41", &["75", "76", "77", "78", "79"]),
    // United Kingdom (Ofcom): 071 to 075 and 077 to 079; 070 is personal numbering and 076
    // pagers, except 07624 (Isle of Man mobiles).
    (
        "44",
        &["71", "72", "73", "74", "75", "77", "78", "79", "7624"],
    ),
    // France (ARCEP): 06 and 073 to 079 (070 to 072 are not mobile).
    ("33", &["6", "73", "74", "75", "76", "77", "78", "79"]),
    // Netherlands (ACM): 06-1 to 06-5 and 06-8 (06-6 pagers, 06-7 internet access).
    ("31", &["61", "62", "63", "64", "65", "68"]),
];

/// Country codes whose plan does not separate mobile numbers (NANP).
const INDISTINGUISHABLE: &[&str] = &["1"];

/// The mobile NSN prefixes of `country_code` (`"49"`, `"+49"` or `"0049"`).
pub fn mobile_ranges(country_code: &str) -> Result<&'static [&'static str], MobileRangesError> {
    let cc = bare_country_code(country_code);
    if let Some((_, r)) = RANGES.iter().find(|(c, _)| *c == cc) {
        return Ok(r);
    }
    if INDISTINGUISHABLE.contains(&cc) {
        return Err(MobileRangesError::Indistinguishable(cc.to_owned()));
    }
    Err(MobileRangesError::Unknown(cc.to_owned()))
}

fn bare_country_code(cc: &str) -> &str {
    let cc = cc.trim();
    cc.strip_prefix('+')
        .or_else(|| cc.strip_prefix("00"))
        .unwrap_or(cc)
}

/// Whether `number` is a mobile number of the site's country `country_code`, given in
/// E.164 (`+4917…`), international (`004917…`) or national (`017…`) form. Numbers of
/// other countries and countries without known ranges are never mobile here.
pub fn is_mobile(number: &str, country_code: &str) -> bool {
    let Ok(ranges) = mobile_ranges(country_code) else {
        return false;
    };
    let cc = bare_country_code(country_code);
    let n = number.trim();
    let nsn = if let Some(intl) = n.strip_prefix('+').or_else(|| n.strip_prefix("00")) {
        intl.strip_prefix(cc)
    } else {
        n.strip_prefix('0')
    };
    let Some(nsn) = nsn else {
        return false;
    };
    // The shortest mobile NSN of these plans has 9 digits (AT, CH, FR, NL); a prefix
    // alone is not a number.
    nsn.len() >= 7
        && nsn.bytes().all(|b| b.is_ascii_digit())
        && ranges.iter().any(|p| nsn.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(cc: &str, mobile: &[&str], not: &[&str]) {
        for n in mobile {
            assert!(is_mobile(n, cc), "{n} is mobile in +{cc}");
        }
        for n in not {
            assert!(!is_mobile(n, cc), "{n} is not mobile in +{cc}");
        }
    }

    #[test]
    fn germany() {
        check(
            "49",
            &[
                "+491701234567",
                "+4915112345678",
                "01601234567",
                "00491761234567",
            ],
            &[
                "+49301234567",
                "030123456",
                "+4318001234",
                "112",
                "+4980012345",
            ],
        );
    }

    #[test]
    fn austria() {
        check(
            "43",
            &[
                "+436641234567",
                "06991234567",
                "+43650123456",
                "00436761234567",
            ],
            &[
                "+43112345678",
                "01 2345678",
                "+43800123456",
                "+491701234567",
            ],
        );
    }

    #[test]
    fn switzerland() {
        check(
            "41",
            &["+41791234567", "0761234567", "+41751234567"],
            &["+41441234567", "0800123456", "+41741234567"],
        );
    }

    #[test]
    fn united_kingdom() {
        check(
            "44",
            &[
                "+447700900123",
                "07911123456",
                "+447624123456",
                "07123456789",
            ],
            &["+442079460000", "07012345678", "07600123456", "0800123456"],
        );
    }

    #[test]
    fn france() {
        check(
            "33",
            &["+33612345678", "0732345678", "0798765432"],
            &["+33123456789", "0700123456", "0912345678", "+3380012345"],
        );
    }

    #[test]
    fn netherlands() {
        check(
            "31",
            &["+31612345678", "0687654321", "0031651234567"],
            &["+31201234567", "0661234567", "0676123456", "0800123456"],
        );
    }

    #[test]
    fn country_code_spellings() {
        assert!(is_mobile("+491701234567", "+49"));
        assert!(is_mobile("+491701234567", "0049"));
        assert_eq!(mobile_ranges("+49"), mobile_ranges("49"));
    }

    #[test]
    fn us_is_refused_with_a_reason_and_never_mobile() {
        let e = mobile_ranges("1").expect_err("NANP");
        assert_eq!(e, MobileRangesError::Indistinguishable("1".into()));
        assert!(e.to_string().contains("cannot be told apart"), "{e}");
        assert!(!is_mobile("+12125550123", "1"));
        let e = mobile_ranges("999").expect_err("unknown");
        assert!(e.to_string().contains("+999 are not known"), "{e}");
    }
}
