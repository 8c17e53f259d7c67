//! Validation rules for topics that every metadata authority applies the same way.

use kafka_protocol::ResponseError;

use super::{AdminError, Image};

/// Longest topic name Kafka accepts.
pub const TOPIC_NAME_LENGTH_MAX: usize = 249;

/// Checks a topic name against Kafka's rules: 1 to 249 characters of `[a-zA-Z0-9._-]`, and
/// neither `.` nor `..`. A violation is INVALID_TOPIC_EXCEPTION, as Kafka answers.
pub fn topic_name(name: &str) -> Result<(), AdminError> {
    let invalid = |why: String| {
        Err(AdminError::new(
            ResponseError::InvalidTopicException,
            format!("Topic name {why}"),
        ))
    };
    if name.is_empty() {
        return invalid("is illegal, it can't be empty".into());
    }
    if name == "." || name == ".." {
        return invalid(format!("cannot be \"{name}\""));
    }
    if name.len() > TOPIC_NAME_LENGTH_MAX {
        return invalid(format!(
            "is illegal, it can't be longer than {TOPIC_NAME_LENGTH_MAX} characters, topic name: {name}"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._-".contains(*c)))
    {
        return invalid(format!(
            "\"{name}\" is illegal, it contains a character other than ASCII alphanumerics, \
             '.', '_' and '-' ({c:?})"
        ));
    }
    Ok(())
}

/// Kafka refuses a topic whose name differs from an existing one only by `.` versus `_`,
/// because both map to the same metric names.
pub fn no_collision(image: &Image, name: &str) -> Result<(), AdminError> {
    let normalized = |n: &str| n.replace('.', "_");
    let wanted = normalized(name);
    match image
        .topics
        .keys()
        .find(|existing| *existing != name && normalized(existing) == wanted)
    {
        Some(existing) => Err(AdminError::new(
            ResponseError::InvalidTopicException,
            format!("Topic '{name}' collides with existing topic: {existing}"),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_kafka_legal_names() {
        for name in [
            "a",
            "orders",
            "orders.v1",
            "orders_v1",
            "ORDERS-1",
            &"x".repeat(249),
        ] {
            assert_eq!(topic_name(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn refuses_names_kafka_refuses_with_invalid_topic_exception() {
        for name in [
            "",
            ".",
            "..",
            "has space",
            "slash/name",
            "ünïcode",
            &"x".repeat(250),
        ] {
            let err = topic_name(name).unwrap_err();
            assert_eq!(err.code, ResponseError::InvalidTopicException, "{name}");
            assert!(err.message.starts_with("Topic name"), "{}", err.message);
        }
    }

    #[test]
    fn refuses_a_dot_underscore_collision() {
        let mut image = Image::empty("c", 1);
        image.topics.insert(
            "a.b".into(),
            super::super::Topic {
                name: "a.b".into(),
                id: uuid::Uuid::nil(),
                partitions: vec![],
                configs: Default::default(),
                internal: false,
            },
        );
        assert!(no_collision(&image, "a_b").is_err());
        assert!(no_collision(&image, "a.b").is_ok());
        assert!(no_collision(&image, "a-b").is_ok());
    }
}
