//! The words every layer shares: treatment areas, photographic views, a capture's role in its
//! series, and what a consent allows (scopes). They sit on the ground floor so that analysis,
//! records, review and the storage backends can all name them without importing each other.

/// Defines a closed set of snake_case names with `as_str`, `FromStr`, `ALL` and serde.
macro_rules! name_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
                    $($s => Ok($name::$variant),)+
                    other => Err(format!(
                        "unknown {} {other:?} (expected one of: {})",
                        stringify!($name).to_ascii_lowercase(),
                        [$($s),+].join(", ")
                    )),
                }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

name_enum!(
    /// What a consent allows photos to be used for.
    Scope {
        Clinical => "clinical",
        Teaching => "teaching",
        Publication => "publication",
    }
);

name_enum!(
    /// Treatment area.
    Area {
        Face => "face",
        Neck => "neck",
        Scalp => "scalp",
        Hands => "hands",
        Decollete => "decollete",
        Body => "body",
    }
);

name_enum!(
    /// Standard photographic view.
    View {
        Frontal => "frontal",
        ObliqueLeft45 => "oblique_left_45",
        ObliqueRight45 => "oblique_right_45",
        LateralLeft90 => "lateral_left_90",
        LateralRight90 => "lateral_right_90",
        ScalpVertex => "scalp_vertex",
        ScalpFrontal => "scalp_frontal",
        ScalpCrown => "scalp_crown",
        Dorsal => "dorsal",
        Palmar => "palmar",
        Other => "other",
    }
);

name_enum!(
    /// A capture starts a series (baseline) or follows one.
    Role {
        Baseline => "baseline",
        FollowUp => "follow_up",
    }
);

/// Parse a comma-separated scope list such as `clinical,publication`.
pub fn parse_scopes(s: &str) -> Result<Vec<Scope>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let sc: Scope = part.parse()?;
        if !out.contains(&sc) {
            out.push(sc);
        }
    }
    if out.is_empty() {
        return Err("no scope given (expected clinical, teaching and/or publication)".into());
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for v in View::ALL {
            assert_eq!(v.as_str().parse::<View>().unwrap(), *v);
        }
        assert_eq!(
            "Oblique-Left-45".parse::<View>().unwrap(),
            View::ObliqueLeft45
        );
        let e = "chin".parse::<Area>().unwrap_err();
        assert!(e.contains("face") && e.contains("chin"), "{e}");
    }

    #[test]
    fn scopes_parse_sorted_and_unique() {
        assert_eq!(
            parse_scopes("publication, clinical,clinical").unwrap(),
            vec![Scope::Clinical, Scope::Publication]
        );
        assert!(parse_scopes("").is_err());
        assert!(parse_scopes("clinical,marketing").is_err());
    }
}

impl View {
    /// The view as a clinician reads it: "Oblique left 45°".
    pub fn label(self) -> &'static str {
        match self {
            View::Frontal => "Frontal",
            View::ObliqueLeft45 => "Oblique left 45°",
            View::ObliqueRight45 => "Oblique right 45°",
            View::LateralLeft90 => "Lateral left 90°",
            View::LateralRight90 => "Lateral right 90°",
            View::ScalpVertex => "Scalp, vertex",
            View::ScalpFrontal => "Scalp, frontal hairline",
            View::ScalpCrown => "Scalp, crown",
            View::Dorsal => "Back of the hand",
            View::Palmar => "Palm",
            View::Other => "Other view",
        }
    }

    /// How far the head turns from frontal in this view (degrees), for the face views.
    pub fn head_turn_deg(self) -> Option<f64> {
        match self {
            View::Frontal => Some(0.0),
            View::ObliqueLeft45 | View::ObliqueRight45 => Some(45.0),
            View::LateralLeft90 | View::LateralRight90 => Some(90.0),
            _ => None,
        }
    }
}

impl Role {
    /// "Baseline", "Follow-up".
    pub fn label(self) -> &'static str {
        match self {
            Role::Baseline => "Baseline",
            Role::FollowUp => "Follow-up",
        }
    }
}

impl Area {
    /// "Face", "Décolleté"…
    pub fn label(self) -> &'static str {
        match self {
            Area::Face => "Face",
            Area::Neck => "Neck",
            Area::Scalp => "Scalp",
            Area::Hands => "Hands",
            Area::Decollete => "Décolleté",
            Area::Body => "Body",
        }
    }
}

#[cfg(test)]
mod label_tests {
    use super::*;

    #[test]
    fn every_view_has_a_plain_label() {
        for v in [
            View::Frontal,
            View::ObliqueLeft45,
            View::ObliqueRight45,
            View::LateralLeft90,
            View::LateralRight90,
            View::ScalpVertex,
            View::ScalpFrontal,
            View::ScalpCrown,
            View::Dorsal,
            View::Palmar,
            View::Other,
        ] {
            assert!(!v.label().contains('_'), "{v}");
        }
        assert_eq!(View::ObliqueLeft45.label(), "Oblique left 45°");
        assert_eq!(Role::FollowUp.label(), "Follow-up");
    }
}
