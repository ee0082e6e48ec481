//! `Serialize`/`Deserialize` as the canonical string, validated on the way in.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{
    AiProvider, BotId, BotName, BotStatus, ChannelType, ContainerId, ModelName, SecretName,
    SecretsRootId, Timestamp,
};

macro_rules! via_string {
    ($($ty:ty),+) => {$(
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(D::Error::custom)
            }
        }
    )+};
}

via_string!(
    AiProvider,
    BotId,
    BotName,
    BotStatus,
    ChannelType,
    ContainerId,
    ModelName,
    SecretName,
    SecretsRootId,
    Timestamp
);
