//! Random operation sequences against the store and an in-memory model agree.

use std::collections::BTreeMap;

use botmaker_domain::{BotId, SecretName};
use botmaker_secrets::{SecretsError, SecretsOptions, SecretsStore};
use proptest::prelude::*;

use crate::common::name;

const MAX: usize = 48;

#[derive(Clone, Debug)]
enum Op {
    Write(usize, usize, Vec<u8>),
    WriteStr(usize, usize, String),
    Read(usize, usize),
    Remove(usize, usize),
    DeleteBot(usize),
    CreateBot(usize),
    List(usize),
    ReadAll(usize),
    ReadMany(usize, Vec<usize>),
    Bots,
    Missing(usize),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    let bot = 0..3usize;
    let sec = 0..4usize;
    prop_oneof![
        4 => (bot.clone(), sec.clone(), proptest::collection::vec(any::<u8>(), 0..=MAX + 8))
            .prop_map(|(b, s, v)| Op::Write(b, s, v)),
        2 => (bot.clone(), sec.clone(), "[a-z\\n\\r]{0,10}").prop_map(|(b, s, v)| Op::WriteStr(b, s, v)),
        3 => (bot.clone(), sec.clone()).prop_map(|(b, s)| Op::Read(b, s)),
        2 => (bot.clone(), sec).prop_map(|(b, s)| Op::Remove(b, s)),
        1 => bot.clone().prop_map(Op::DeleteBot),
        1 => bot.clone().prop_map(Op::CreateBot),
        2 => bot.clone().prop_map(Op::List),
        2 => bot.clone().prop_map(Op::ReadAll),
        2 => (bot.clone(), proptest::collection::vec(0..4usize, 0..5)).prop_map(|(b, s)| Op::ReadMany(b, s)),
        1 => Just(Op::Bots),
        1 => bot.prop_map(Op::Missing),
        1 => Just(Op::Reopen),
    ]
}

type Model = BTreeMap<BotId, BTreeMap<SecretName, Vec<u8>>>;

fn open(root: &std::path::Path) -> SecretsStore {
    SecretsStore::open_with(
        root,
        SecretsOptions {
            max_secret_size: MAX,
            ..SecretsOptions::default()
        },
    )
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn store_agrees_with_model(ops in proptest::collection::vec(op(), 1..60)) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("secrets");
        let mut store = open(&root);
        let bots: Vec<BotId> = (0..3).map(|_| BotId::generate()).collect();
        let names: Vec<SecretName> = ["ai_api_key", "channel_token", "channel_config", "x"]
            .iter().map(|n| name(n)).collect();
        let mut model = Model::new();

        for op in ops {
            match op {
                Op::Write(b, s, v) => {
                    let r = store.write(&bots[b], &names[s], &v);
                    if v.len() > MAX {
                        let too_large = matches!(r, Err(SecretsError::TooLarge { .. }));
                        prop_assert!(too_large, "{r:?}");
                    } else {
                        prop_assert!(r.is_ok(), "{r:?}");
                        model.entry(bots[b]).or_default().insert(names[s].clone(), v);
                    }
                }
                Op::WriteStr(b, s, v) => {
                    store.write_str(&bots[b], &names[s], &v).unwrap();
                    let stored = botmaker_secrets::trim_trailing_newline(v.as_bytes()).to_vec();
                    model.entry(bots[b]).or_default().insert(names[s].clone(), stored);
                }
                Op::Read(b, s) => {
                    let got = store.read(&bots[b], &names[s]);
                    if let Some(v) = model.get(&bots[b]).and_then(|m| m.get(&names[s])) {
                        let got = got.unwrap();
                        prop_assert_eq!(got.expose(), &v[..]);
                    } else {
                        let nf = matches!(got, Err(SecretsError::NotFound { .. }));
                        prop_assert!(nf, "{got:?}");
                    }
                }
                Op::Remove(b, s) => {
                    let r = store.remove(&bots[b], &names[s]);
                    let had = model.get_mut(&bots[b]).and_then(|m| m.remove(&names[s]));
                    if had.is_some() {
                        prop_assert!(r.is_ok(), "{r:?}");
                    } else {
                        let nf = matches!(r, Err(SecretsError::NotFound { .. }));
                        prop_assert!(nf, "{r:?}");
                    }
                }
                Op::DeleteBot(b) => {
                    let r = store.delete_bot(&bots[b]);
                    if model.remove(&bots[b]).is_some() {
                        prop_assert!(r.is_ok(), "{r:?}");
                    } else {
                        let nf = matches!(r, Err(SecretsError::BotNotFound { .. }));
                        prop_assert!(nf, "{r:?}");
                    }
                }
                Op::CreateBot(b) => {
                    let created = store.create_bot(&bots[b]).unwrap();
                    prop_assert_eq!(created, !model.contains_key(&bots[b]));
                    model.entry(bots[b]).or_default();
                }
                Op::List(b) => {
                    let listed: Vec<(String, u64, u32)> = store.list(&bots[b]).unwrap().into_iter()
                        .map(|m| (m.name.to_string(), m.size, m.mode)).collect();
                    let expected: Vec<(String, u64, u32)> = model.get(&bots[b]).map(|m| m.iter()
                        .map(|(n, v)| (n.to_string(), v.len() as u64, 0o600)).collect()).unwrap_or_default();
                    prop_assert_eq!(listed, expected);
                }
                Op::ReadAll(b) => {
                    let got: Vec<(SecretName, Vec<u8>)> = store.read_all(&bots[b]).unwrap().into_iter()
                        .map(|(n, v)| (n, v.expose().to_vec())).collect();
                    let expected: Vec<(SecretName, Vec<u8>)> = model.get(&bots[b])
                        .map(|m| m.iter().map(|(n, v)| (n.clone(), v.clone())).collect()).unwrap_or_default();
                    prop_assert_eq!(got, expected);
                }
                Op::ReadMany(b, s) => {
                    let wanted: Vec<SecretName> = s.iter().map(|&i| names[i].clone()).collect();
                    let got = store.read_many(&bots[b], &wanted);
                    let first_missing = wanted.iter()
                        .find(|n| !model.get(&bots[b]).is_some_and(|m| m.contains_key(*n)));
                    match first_missing {
                        None => {
                            let got: Vec<Vec<u8>> = got.unwrap().iter().map(|v| v.expose().to_vec()).collect();
                            let expected: Vec<Vec<u8>> = wanted.iter().map(|n| model[&bots[b]][n].clone()).collect();
                            prop_assert_eq!(got, expected);
                        }
                        Some(missing) => {
                            let named = matches!(&got, Err(SecretsError::NotFound { name, .. }) if name == missing);
                            prop_assert!(named, "expected NotFound of {missing}: {got:?}");
                        }
                    }
                }
                Op::Bots => {
                    let expected: Vec<BotId> = model.keys().copied().collect();
                    prop_assert_eq!(store.bots().unwrap(), expected);
                }
                Op::Missing(b) => {
                    let expected: Vec<SecretName> = SecretName::required().into_iter()
                        .filter(|r| !model.get(&bots[b]).is_some_and(|m| m.contains_key(r))).collect();
                    prop_assert_eq!(store.missing_required(&bots[b]).unwrap(), expected);
                }
                Op::Reopen => {
                    drop(store);
                    store = open(&root);
                    prop_assert_eq!(store.swept(), 0);
                }
            }
        }
        let report = store.audit().unwrap();
        prop_assert!(report.is_clean(), "{report}");
    }
}
