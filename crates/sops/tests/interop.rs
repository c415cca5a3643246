//! driftless decrypts what the real sops 3.11 CLI encrypts (with keys made by the real age-keygen,
//! ssh-keygen and gpg), exactly as `sops -d` does, and refuses what was tampered with.

use driftless_sops::{DecryptError, Format, Keys, Plaintext, decrypt};
use driftless_testenv::sops::{Lab, gpg_key, run};
use serde_json::Value;

fn keys(contents: &[&str]) -> Keys {
    let mut keys = Keys::new();
    for (index, contents) in contents.iter().enumerate() {
        keys.add(contents.as_bytes(), &format!("key {index}"))
            .expect("key loads");
    }
    keys
}

fn yaml_documents(text: &[u8]) -> Vec<Value> {
    serde_saphyr::from_multiple(std::str::from_utf8(text).expect("utf-8")).expect("sops wrote YAML")
}

fn documents(plain: Plaintext) -> Vec<Value> {
    match plain {
        Plaintext::Documents(documents) => documents,
        other => panic!("documents expected: {other:?}"),
    }
}

const SECRET_YAML: &str = "\
apiVersion: v1
kind: Secret
metadata:
  name: database
  labels:
    tier: backend
    replicas: 3
type: Opaque
stringData:
  password: correct horse battery staple
  port: \"5432\"
data:
  token: c2VjcmV0LXRva2Vu
";

const TYPED_YAML: &str = "\
name: typed
count: 8080
ratio: 1.5
big: 1e3
enabled: true
disabled: False
empty: ''
nothing: null
nested:
  list: [a, 2, {deep: x, flag: false}]
  multi: |
    line one
    line two
public_unencrypted: stays readable
---
second: document
number: 7
";

#[test]
fn age_yaml_with_encrypted_regex_decrypts_as_sops_does() {
    let lab = Lab::new();
    let (identity, recipient) = lab.age_key("team");
    let encrypted = lab.encrypt(
        "secret.yaml",
        SECRET_YAML.as_bytes(),
        &["--age", &recipient, "--encrypted-regex", "^(data|stringData)$"],
        &[],
    );
    let text = String::from_utf8(encrypted.clone()).expect("utf-8");
    assert!(!text.contains("correct horse"), "sops encrypted the value");
    assert!(text.contains("name: database"), "metadata stays readable");

    let ours = documents(decrypt(&encrypted, Format::Yaml, &keys(&[&identity])).expect("decrypts"));
    let file = lab.write("team.agekey", identity.as_bytes());
    let theirs = yaml_documents(&lab.sops_decrypt(
        "secret.yaml",
        &[("SOPS_AGE_KEY_FILE", file.to_str().expect("utf-8"))],
    ));
    assert_eq!(ours, theirs);
    assert_eq!(ours[0]["stringData"]["password"], "correct horse battery staple");
    assert_eq!(ours[0]["metadata"]["labels"]["replicas"], 3);
}

#[test]
fn every_type_every_document_and_unencrypted_suffix_round_trip() {
    let lab = Lab::new();
    let (identity, recipient) = lab.age_key("team");
    let encrypted = lab.encrypt("typed.yaml", TYPED_YAML.as_bytes(), &["--age", &recipient], &[]);
    let ours = documents(decrypt(&encrypted, Format::Yaml, &keys(&[&identity])).expect("decrypts"));
    let file = lab.write("team.agekey", identity.as_bytes());
    let theirs = yaml_documents(&lab.sops_decrypt(
        "typed.yaml",
        &[("SOPS_AGE_KEY_FILE", file.to_str().expect("utf-8"))],
    ));
    assert_eq!(ours, theirs);
    assert_eq!(ours.len(), 2);
    assert_eq!(ours[0]["count"], 8080);
    assert_eq!(ours[0]["enabled"], true);
    assert_eq!(ours[0]["nested"]["list"][2]["flag"], false);
    assert_eq!(ours[1]["number"], 7);
}

#[test]
fn mac_only_encrypted_files_verify() {
    let lab = Lab::new();
    let (identity, recipient) = lab.age_key("team");
    let encrypted = lab.encrypt(
        "secret.yaml",
        SECRET_YAML.as_bytes(),
        &[
            "--age",
            &recipient,
            "--encrypted-regex",
            "^stringData$",
            "--mac-only-encrypted",
        ],
        &[],
    );
    let ours = documents(decrypt(&encrypted, Format::Yaml, &keys(&[&identity])).expect("decrypts"));
    assert_eq!(ours[0]["stringData"]["port"], "5432");
    // With mac_only_encrypted, unencrypted values may change (that is the option's point) ...
    let edited = String::from_utf8(encrypted.clone())
        .expect("utf-8")
        .replace("tier: backend", "tier: frontend");
    let plain =
        documents(decrypt(edited.as_bytes(), Format::Yaml, &keys(&[&identity])).expect("still verifies"));
    assert_eq!(plain[0]["metadata"]["labels"]["tier"], "frontend");
}

#[test]
fn json_dotenv_and_binary_files_decrypt_as_sops_does() {
    let lab = Lab::new();
    let (identity, recipient) = lab.age_key("team");
    let env_file = lab.write("team.agekey", identity.as_bytes());
    let key_env = [("SOPS_AGE_KEY_FILE", env_file.to_str().expect("utf-8"))];
    let keys = keys(&[&identity]);

    let json_plain = br#"{"user": "admin", "port": 8080, "ratio": 0.25, "on": true, "list": [1, "two"], "x_unencrypted": 42}"#;
    let encrypted = lab.encrypt("config.json", json_plain, &["--age", &recipient], &[]);
    let ours = documents(decrypt(&encrypted, Format::Json, &keys).expect("JSON decrypts"));
    let theirs: Value =
        serde_json::from_slice(&lab.sops_decrypt("config.json", &key_env)).expect("sops wrote JSON");
    assert_eq!(ours, vec![theirs]);
    assert_eq!(ours[0]["port"], 8080);

    let dotenv_plain = b"USER=admin\nPASSWORD=s3cr=t with spaces\n# a comment\nMULTI=one\\ntwo\n";
    let encrypted = lab.encrypt("app.env", dotenv_plain, &["--age", &recipient], &[]);
    let Plaintext::Dotenv(pairs) = decrypt(&encrypted, Format::Dotenv, &keys).expect("dotenv decrypts")
    else {
        panic!("dotenv pairs expected")
    };
    assert_eq!(
        pairs,
        vec![
            ("USER".to_owned(), "admin".to_owned()),
            ("PASSWORD".to_owned(), "s3cr=t with spaces".to_owned()),
            ("MULTI".to_owned(), "one\ntwo".to_owned()),
        ]
    );
    let theirs = String::from_utf8(lab.sops_decrypt("app.env", &key_env)).expect("utf-8");
    let ours_text = Plaintext::Dotenv(pairs)
        .to_bytes(Format::Dotenv)
        .expect("serialises");
    assert_eq!(
        std::str::from_utf8(&ours_text).expect("utf-8"),
        theirs.replace("# a comment\n", "")
    );

    let binary_plain: Vec<u8> = (0..=255u8).chain([0xff, 0xfe, b'\n']).collect();
    let encrypted = lab.encrypt("blob.bin", &binary_plain, &["--age", &recipient], &[]);
    let Plaintext::Binary(bytes) = decrypt(&encrypted, Format::Binary, &keys).expect("binary decrypts")
    else {
        panic!("bytes expected")
    };
    assert_eq!(bytes, binary_plain);
    assert_eq!(lab.sops_decrypt("blob.bin", &key_env), binary_plain);
}

#[test]
fn ssh_keys_are_age_recipients() {
    let lab = Lab::new();
    for kind in ["ed25519", "rsa"] {
        let key = lab.path().join(format!("id_{kind}"));
        let key_path = key.to_str().expect("utf-8");
        run(
            "ssh-keygen",
            &["-q", "-t", kind, "-N", "", "-f", key_path],
            lab.path(),
            &[],
            None,
        );
        let public = std::fs::read_to_string(format!("{key_path}.pub")).expect("public key");
        let name = format!("ssh-{kind}.yaml");
        let encrypted = lab.encrypt(&name, SECRET_YAML.as_bytes(), &["--age", public.trim()], &[]);
        let private = std::fs::read_to_string(&key).expect("private key");
        let ours = documents(
            decrypt(&encrypted, Format::Yaml, &keys(&[&private])).expect("decrypts with the SSH key"),
        );
        assert_eq!(
            ours[0]["stringData"]["password"], "correct horse battery staple",
            "{kind}"
        );
    }
}

#[test]
fn pgp_keys_made_by_gpg_decrypt() {
    let lab = Lab::new();
    for (name, algorithm) in [("rsa", "rsa3072"), ("curve", "ed25519")] {
        let (home, fingerprint, secret) = gpg_key(&lab, name, algorithm);
        let file = format!("pgp-{name}.yaml");
        let encrypted = lab.encrypt(
            &file,
            SECRET_YAML.as_bytes(),
            &["--pgp", &fingerprint],
            &[("GNUPGHOME", home.to_str().expect("utf-8"))],
        );
        let ours = documents(
            decrypt(&encrypted, Format::Yaml, &keys(&[&secret])).expect("decrypts with the PGP key"),
        );
        let theirs =
            yaml_documents(&lab.sops_decrypt(&file, &[("GNUPGHOME", home.to_str().expect("utf-8"))]));
        assert_eq!(ours, theirs, "{name}");
    }
}

#[test]
fn shamir_key_groups_need_the_threshold() {
    let lab = Lab::new();
    let (one, r1) = lab.age_key("one");
    let (two, r2) = lab.age_key("two");
    let (three, r3) = lab.age_key("three");
    lab.write(
        ".sops.yaml",
        format!(
            "creation_rules:\n  - shamir_threshold: 2\n    key_groups:\n      - age: [{r1}]\n      - age: [{r2}]\n      - age: [{r3}]\n"
        )
        .as_bytes(),
    );
    let encrypted = lab.encrypt("shared.yaml", SECRET_YAML.as_bytes(), &[], &[]);
    let two_of_three =
        documents(decrypt(&encrypted, Format::Yaml, &keys(&[&one, &three])).expect("2 of 3 decrypt"));
    assert_eq!(
        two_of_three[0]["stringData"]["password"],
        "correct horse battery staple"
    );
    let err = decrypt(&encrypted, Format::Yaml, &keys(&[&two])).expect_err("1 of 3 is not enough");
    assert!(matches!(err, DecryptError::NoKey { .. }), "{err}");
}

#[test]
fn tampering_and_missing_keys_are_refused_with_clear_errors() {
    let lab = Lab::new();
    let (identity, recipient) = lab.age_key("team");
    let (stranger, _) = lab.age_key("stranger");
    let encrypted = String::from_utf8(lab.encrypt(
        "secret.yaml",
        SECRET_YAML.as_bytes(),
        &["--age", &recipient, "--encrypted-regex", "^(data|stringData)$"],
        &[],
    ))
    .expect("utf-8");
    let keys_ok = keys(&[&identity]);

    let err = decrypt(encrypted.as_bytes(), Format::Yaml, &keys(&[&stranger])).expect_err("wrong key");
    let message = err.to_string();
    assert!(
        message.contains(&recipient) && message.contains("none of the configured age or SSH keys"),
        "names the recipient and what was tried: {message}"
    );
    let err = decrypt(encrypted.as_bytes(), Format::Yaml, &Keys::new()).expect_err("no key");
    assert!(err.to_string().contains("no keys are configured"), "{err}");

    // A flipped character of one ciphertext.
    let start = encrypted
        .find("password: ENC[AES256_GCM,data:")
        .expect("encrypted password")
        + 31;
    let mut tampered = encrypted.clone();
    let flipped = if &tampered[start..=start] == "A" { "B" } else { "A" };
    tampered.replace_range(start..=start, flipped);
    let err = decrypt(tampered.as_bytes(), Format::Yaml, &keys_ok).expect_err("tampered ciphertext");
    assert_eq!(
        err.to_string(),
        "value at key stringData.password: does not decrypt (tampered ciphertext, a value moved to another key, or another file's key)"
    );
    assert!(!err.to_string().contains("correct horse"));

    // Two values swapped between keys: each fails its key's additional data.
    let password = line_value(&encrypted, "password:");
    let port = line_value(&encrypted, "port:");
    let swapped = encrypted
        .replace(&password, "@@P@@")
        .replace(&port, &password)
        .replace("@@P@@", &port);
    let err = decrypt(swapped.as_bytes(), Format::Yaml, &keys_ok).expect_err("swapped values");
    assert!(matches!(err, DecryptError::Value { .. }), "{err}");

    // An unencrypted value changed: only the MAC can tell.
    let edited = encrypted.replace("tier: backend", "tier: frontend");
    assert_eq!(
        decrypt(edited.as_bytes(), Format::Yaml, &keys_ok),
        Err(DecryptError::MacMismatch)
    );

    // A value removed: the MAC again.
    let removed = encrypted
        .lines()
        .filter(|line| !line.trim_start().starts_with("token:"))
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(
        decrypt(removed.as_bytes(), Format::Yaml, &keys_ok),
        Err(DecryptError::MacMismatch)
    );

    // The MAC itself replaced by another file's.
    let other = String::from_utf8(lab.encrypt(
        "other.yaml",
        SECRET_YAML.as_bytes(),
        &["--age", &recipient, "--encrypted-regex", "^(data|stringData)$"],
        &[],
    ))
    .expect("utf-8");
    let foreign_mac = encrypted.replace(&line_value(&encrypted, "mac:"), &line_value(&other, "mac:"));
    assert!(decrypt(foreign_mac.as_bytes(), Format::Yaml, &keys_ok).is_err());

    // Not a SOPS file at all.
    assert_eq!(
        decrypt(SECRET_YAML.as_bytes(), Format::Yaml, &keys_ok),
        Err(DecryptError::NotEncrypted)
    );
}

fn line_value(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|line| line.trim_start().strip_prefix(key))
        .expect("key present")
        .trim()
        .to_owned()
}

/// The fuzz target's seeds (real sops output for the target's fixed identity) decrypt, so the
/// fuzzer starts from inputs that reach every step of decryption.
#[test]
fn the_fuzz_seeds_decrypt_with_the_fuzz_identity() {
    let identity = "AGE-SECRET-KEY-1EQUCGFZH8UZKSZ0Z5N5T234YRNDT4U9H7QNYXWRRNJYDDVXE6FWSCPGNJ7";
    let seeds = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/sops");
    for (file, format) in [
        ("secret.yaml.bin", Format::Yaml),
        ("json.bin", Format::Json),
        ("dotenv.bin", Format::Dotenv),
    ] {
        let seed = std::fs::read(seeds.join(file)).expect("seed");
        decrypt(&seed[1..], format, &keys(&[identity])).unwrap_or_else(|err| panic!("{file}: {err}"));
    }
}
