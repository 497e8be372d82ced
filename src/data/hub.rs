//! Text from the Hugging Face hub (`[data] kind = "hub"`; the cargo feature `hub`, on by
//! default): the dataset's files (text, parquet or JSON lines) and, optionally, a model's
//! tokenizer.json are fetched with hf-hub into its cache (`$HF_HOME/hub`, default
//! `~/.cache/huggingface/hub`), then the source is a local [`TextSource`] over those paths.
//! Files already in the cache are used without the network; with `HF_HUB_OFFLINE=1`, or when
//! the hub cannot be reached, the error names the missing file before anything is tokenized.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::{DataError, TextConfig, TextSource};

/// `[data] kind = "hub"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubConfig {
    /// Repository id, e.g. "roneneldan/TinyStories".
    pub repo: String,
    /// "dataset" (default) or "model".
    #[serde(default = "default_repo_type")]
    pub repo_type: String,
    /// Branch, tag or commit.
    #[serde(default = "default_revision")]
    pub revision: String,
    /// Files of the repository (UTF-8 text, parquet or JSON lines), e.g.
    /// ["data/train-00000-of-00004.parquet"].
    pub files: Vec<String>,
    /// The column or field records keep their text in (default "text").
    #[serde(default)]
    pub text_field: Option<String>,
    /// A model repository whose tokenizer.json to use (needs vocab_size); default: train a BPE.
    #[serde(default)]
    pub tokenizer_repo: Option<String>,
    #[serde(default)]
    pub vocab_size: Option<usize>,
    #[serde(default)]
    pub document_separator: Option<String>,
    #[serde(default = "super::text::default_validation_fraction")]
    pub validation_fraction: f64,
    #[serde(default)]
    pub split_seed: u64,
    /// Pins the training order; default: the run's seed keys it.
    #[serde(default)]
    pub data_seed: Option<u64>,
    #[serde(default)]
    pub cache_dir: Option<String>,
    #[serde(skip)]
    pub base_dir: Option<PathBuf>,
}

fn default_repo_type() -> String {
    "dataset".into()
}
fn default_revision() -> String {
    "main".into()
}

impl HubConfig {
    /// Checks the fields without the network; returns the models' vocabulary size.
    pub fn validate(&self) -> Result<usize, DataError> {
        if self.repo.split('/').filter(|p| !p.is_empty()).count() != 2 {
            return Err(DataError::config("repo", format!("{:?} must be owner/name", self.repo)));
        }
        if !matches!(self.repo_type.as_str(), "dataset" | "model") {
            return Err(DataError::config("repo_type", format!("{:?} must be dataset or model", self.repo_type)));
        }
        if self.files.is_empty() {
            return Err(DataError::config("files", "list at least one file of the repository"));
        }
        match (self.tokenizer_repo.is_some(), self.vocab_size) {
            (true, None) => Err(DataError::config(
                "vocab_size",
                "is required with tokenizer_repo: the models' vocabulary must be known before the download",
            )),
            _ => self.text_config(vec!["-".into()], None).validate_without_tokenizer(),
        }
    }

    /// The local text config over downloaded `files` (and `tokenizer`).
    fn text_config(&self, files: Vec<String>, tokenizer: Option<String>) -> TextConfig {
        TextConfig {
            files,
            text_field: self.text_field.clone(),
            vocab_size: self.vocab_size,
            tokenizer,
            document_separator: self.document_separator.clone(),
            validation_fraction: self.validation_fraction,
            split_seed: self.split_seed,
            data_seed: self.data_seed,
            cache_dir: self.cache_dir.clone(),
            base_dir: self.base_dir.clone(),
        }
    }

    /// Fetches every file (and the tokenizer) first, then builds the text source over them.
    pub fn build(&self, hub: &HubAccess) -> Result<TextSource, DataError> {
        self.validate()?;
        let files = self
            .files
            .iter()
            .map(|file| hub.fetch(&self.repo, &self.repo_type, &self.revision, file))
            .collect::<Result<Vec<PathBuf>, DataError>>()?;
        let tokenizer = match &self.tokenizer_repo {
            Some(repo) => Some(hub.fetch(repo, "model", "main", "tokenizer.json")?),
            None => None,
        };
        let as_pattern = |p: &Path| glob::Pattern::escape(&p.to_string_lossy());
        let config =
            self.text_config(files.iter().map(|p| as_pattern(p)).collect(), tokenizer.map(|p| p.display().to_string()));
        TextSource::new(&config)
    }
}

impl TextConfig {
    /// Field checks that need neither files nor a tokenizer.
    fn validate_without_tokenizer(&self) -> Result<usize, DataError> {
        let probe =
            TextConfig { tokenizer: None, vocab_size: Some(self.vocab_size.unwrap_or(bpe_min())), ..self.clone() };
        probe.validate()
    }
}

fn bpe_min() -> usize {
    crate::data::text::bpe::MIN_VOCAB
}

/// Where hub files come from: the hf-hub cache directory, and whether the network may be used.
#[derive(Clone, Debug)]
pub struct HubAccess {
    /// The hub cache (`$HF_HOME/hub`); None = hf-hub's default from the environment.
    pub cache: Option<PathBuf>,
    /// Never use the network (`HF_HUB_OFFLINE=1`): only files already in the cache.
    pub offline: bool,
    /// The hub's address (`HF_ENDPOINT`); None = huggingface.co.
    pub endpoint: Option<String>,
}

impl HubAccess {
    /// From the environment: hf-hub's cache, offline when `HF_HUB_OFFLINE` is 1 or true.
    pub fn from_env() -> HubAccess {
        let offline = std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| matches!(v.trim(), "1" | "true" | "TRUE" | "yes"));
        let endpoint = std::env::var("HF_ENDPOINT").ok().filter(|e| !e.is_empty());
        HubAccess { cache: None, offline, endpoint }
    }

    /// The local path of `file` of `repo`, downloading it when it is not in the cache.
    pub fn fetch(&self, repo: &str, repo_type: &str, revision: &str, file: &str) -> Result<PathBuf, DataError> {
        fetch_impl(self, repo, repo_type, revision, file)
    }
}

#[cfg(feature = "hub")]
fn fetch_impl(
    access: &HubAccess,
    repo: &str,
    repo_type: &str,
    revision: &str,
    file: &str,
) -> Result<PathBuf, DataError> {
    use hf_hub::api::sync::ApiBuilder;
    use hf_hub::{Cache, Repo, RepoType};
    let kind = if repo_type == "model" { RepoType::Model } else { RepoType::Dataset };
    let spec = Repo::with_revision(repo.to_string(), kind, revision.to_string());
    let cache = match &access.cache {
        Some(dir) => Cache::new(dir.clone()),
        None => Cache::from_env(),
    };
    if let Some(path) = cache.repo(spec.clone()).get(file) {
        return Ok(path);
    }
    // A commit revision names its snapshot directly: a cache laid out by Python's huggingface_hub
    // for a commit has snapshots/<commit>/ but no refs/<commit>, which is all `get` looks up.
    let is_commit = revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit());
    let snapshot = cache.path().join(spec.folder_name()).join("snapshots").join(revision).join(file);
    if is_commit && snapshot.is_file() {
        return Ok(snapshot);
    }
    let place = format!("{repo}@{revision}/{file}");
    if access.offline {
        return Err(DataError::config(
            "repo",
            format!("{place} is not in the hub cache {} and HF_HUB_OFFLINE is set", cache.path().display()),
        ));
    }
    let mut builder = ApiBuilder::from_cache(cache.clone()).with_progress(true);
    if let Some(endpoint) = &access.endpoint {
        builder = builder.with_endpoint(endpoint.clone());
    }
    let api = builder
        .build()
        .map_err(|e| DataError::config("repo", format!("{place}: cannot set up the hub client: {e}")))?;
    api.repo(spec).get(file).map_err(|e| {
        DataError::config(
            "repo",
            format!(
                "{place}: download failed ({e}); offline? fetch it on a connected machine into {} \
                 (same layout) or give the files locally with kind = \"text\"",
                cache.path().display()
            ),
        )
    })
}

#[cfg(not(feature = "hub"))]
fn fetch_impl(_: &HubAccess, repo: &str, _: &str, revision: &str, file: &str) -> Result<PathBuf, DataError> {
    Err(DataError::config(
        "kind",
        format!(
            "\"hub\" ({repo}@{revision}/{file}) needs sweeplaw built with `--features hub`; \
             or download the files yourself and use kind = \"text\""
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::text::tests::TempDir;

    fn hub_config(dir: &Path) -> HubConfig {
        HubConfig {
            repo: "someone/tiny-stories".into(),
            repo_type: "dataset".into(),
            revision: "main".into(),
            files: vec!["train.txt".into()],
            text_field: None,
            tokenizer_repo: None,
            vocab_size: Some(300),
            document_separator: Some("<|endoftext|>".into()),
            validation_fraction: 0.15,
            split_seed: 0,
            data_seed: None,
            cache_dir: Some("cache".into()),
            base_dir: Some(dir.to_path_buf()),
        }
    }

    #[test]
    fn config_errors_need_no_network() {
        let dir = TempDir::new("hub-config");
        let config = hub_config(&dir.0);
        assert_eq!(config.validate().unwrap(), 300);
        let bad = HubConfig { repo: "no-slash".into(), ..config.clone() };
        assert!(bad.validate().unwrap_err().to_string().contains("owner/name"));
        let bad = HubConfig { tokenizer_repo: Some("gpt2/gpt2".into()), vocab_size: None, ..config.clone() };
        assert!(bad.validate().unwrap_err().to_string().contains("vocab_size"));
        let bad = HubConfig { repo_type: "space".into(), ..config };
        assert!(bad.validate().unwrap_err().to_string().contains("repo_type"));
    }

    #[cfg(not(feature = "hub"))]
    #[test]
    fn without_the_feature_the_error_says_how_to_build() {
        let dir = TempDir::new("hub-nofeature");
        let access = HubAccess { cache: Some(dir.0.join("hf")), offline: false, endpoint: None };
        let message = hub_config(&dir.0).build(&access).err().unwrap().to_string();
        assert!(message.contains("--features hub") && message.contains("train.txt"), "{message}");
    }

    /// Lays out `files` in an hf-hub cache as a download would: snapshots/<commit>/ and refs/main.
    #[cfg(feature = "hub")]
    fn fake_hub_cache(cache: &Path, repo_folder: &str, files: &[(&str, &str)]) {
        let commit = "0123456789abcdef0123456789abcdef01234567";
        let repo = cache.join(repo_folder);
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs/main"), commit).unwrap();
        for (name, text) in files {
            let path = repo.join("snapshots").join(commit).join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
    }

    #[cfg(feature = "hub")]
    #[test]
    fn cached_files_are_used_offline_and_missing_ones_fail_early() {
        use crate::data::text::tests::write_corpus;
        use crate::data::TokenSource;
        let dir = TempDir::new("hub-cache");
        let docs = write_corpus(&dir.0, 8, 120);
        let text = docs.join("<|endoftext|>");
        let hf = dir.0.join("hf");
        fake_hub_cache(&hf, "datasets--someone--tiny-stories", &[("train.txt", &text)]);
        let access = HubAccess { cache: Some(hf.clone()), offline: true, endpoint: None };
        let source = hub_config(&dir.0).build(&access).unwrap();
        assert_eq!(source.vocab_size(), 300);
        assert!(source.train_tokens() > 0);
        // A commit revision is found by its snapshot, with no refs/<commit> to point at it (the
        // layout Python's huggingface_hub leaves for a commit).
        let commit = HubConfig { revision: "0123456789abcdef0123456789abcdef01234567".into(), ..hub_config(&dir.0) };
        assert_eq!(commit.build(&access).unwrap().train_tokens(), source.train_tokens());
        let missing = HubConfig { files: vec!["train.txt".into(), "valid.txt".into()], ..hub_config(&dir.0) };
        let message = missing.build(&access).err().unwrap().to_string();
        assert!(
            message.contains("someone/tiny-stories@main/valid.txt") && message.contains("HF_HUB_OFFLINE"),
            "{message}"
        );
        // Online but unreachable: the download error names the file and the cache (no network here:
        // an endpoint that refuses connections stands in for it).
        let online = HubAccess { cache: Some(hf), offline: false, endpoint: Some("http://127.0.0.1:9".into()) };
        let message = online.fetch("someone/tiny-stories", "dataset", "main", "valid.txt").unwrap_err().to_string();
        assert!(message.contains("valid.txt") && message.contains("download failed"), "{message}");
    }
}
