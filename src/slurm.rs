//! `sweeplaw slurm CONFIG`: writes an sbatch script for a Slurm job array whose tasks are the
//! workers of one sweep (`sweeplaw sweep --worker $SLURM_ARRAY_TASK_ID/N`) sharing one results
//! directory. Workers claim runs through `runs/<id>/claim.json` (`crate::sweep::claim`), skip
//! runs already done and take over the claims of dead tasks, so submitting the same script again
//! after failures or time limits trains only what is missing.
//!
//! The sweep directory is opened here, before submission: sweep.toml and plan.json are written
//! (a directory of another config is refused now rather than in every task). The tasks run the
//! original config by its absolute path, not the directory's copy `<results>/<name>/sweep.toml`:
//! a config's relative paths (`data.files`, `data.cache_dir`, `train.tuned_table`,
//! `grid.centre`, ...) are resolved against the folder of the file read, and those of the copy
//! would point inside the results directory. Editing the original config later still cannot
//! split a sweep between two configs: each task opens the directory with the config's hash, and
//! a config that differs from the one planned is refused there, as `sweep` refuses it.
//!
//! The values that go into `#SBATCH` lines are checked here (a Slurm time format, at least one
//! CPU), so a mistake is a usage error now rather than a job Slurm rejects or never starts.
//!
//! `--out` is checked before anything is written, since the script replaces whatever is there:
//! it may not be the config, lie among a sweep directory's records (anywhere in it but its
//! `slurm/` folder), or be an existing file other than an sbatch script this command wrote
//! (recognised by its header), so no record, config or other file is ever overwritten.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::sweep::{load_plan, store::SweepStore};

/// Options of `sweeplaw slurm`.
#[derive(Clone, Debug)]
pub struct SlurmOptions {
    pub config: PathBuf,
    pub results: PathBuf,
    /// Array tasks (workers); default one per run.
    pub workers: Option<usize>,
    /// GPUs per task (0: none requested).
    pub gpus_per_task: usize,
    pub cpus_per_task: Option<usize>,
    pub partition: Option<String>,
    /// Slurm time limit per task, e.g. "2:00:00" or "1-00:00:00".
    pub time: Option<String>,
    /// Where the script goes (default `<results>/<name>/slurm/<name>.sbatch`).
    pub out: Option<PathBuf>,
    /// The sweeplaw binary the tasks run (default: this one).
    pub binary: PathBuf,
    /// Seconds without a heartbeat after which a dead task's claim is taken over.
    pub stale_after: f64,
    /// Sweep directories whose finished runs this plan shares are copied in before the script
    /// is written (`sweep --reuse`), so the tasks train only the rest.
    pub reuse: Vec<PathBuf>,
}

/// What the script asks Slurm for and runs: everything `render` needs, all paths absolute.
#[derive(Clone, Debug, PartialEq)]
pub struct JobArray {
    pub sweep: String,
    pub runs: usize,
    pub workers: usize,
    pub binary: PathBuf,
    pub config: PathBuf,
    pub results: PathBuf,
    pub log_dir: PathBuf,
    pub gpus_per_task: usize,
    pub cpus_per_task: Option<usize>,
    pub partition: Option<String>,
    pub time: Option<String>,
    pub stale_after: f64,
}

/// The script written, for the command to print.
#[derive(Clone, Debug)]
pub struct SlurmScript {
    pub path: PathBuf,
    pub job: JobArray,
}

/// Plans the sweep, opens its directory and writes the sbatch script.
pub fn write_script(options: &SlurmOptions) -> Result<SlurmScript> {
    check_options(options)?;
    let (config, plan) = load_plan(&options.config)?;
    let workers = options.workers.unwrap_or(plan.runs.len());
    let results = absolute(&options.results)?;
    check_plain_path("--results", &results)?;
    if let Some(out) = &options.out {
        check_out(out, &options.config, &results.join(&config.name))?;
    }
    let config_text = std::fs::read(&options.config).map_err(|e| Error::io(&options.config, e))?;
    crate::sweep::reuse::check_reuse_dirs(&results.join(&config.name), &options.reuse)?;
    let store = SweepStore::open(&results, &config.name, &config_text, &plan)?;
    if !options.reuse.is_empty() {
        let source = config.data.build_source()?;
        crate::sweep::reuse::reuse_from_all(&store, &plan, source.as_ref(), &options.reuse)?;
    }
    let log_dir = store.dir.join("slurm");
    std::fs::create_dir_all(&log_dir).map_err(|e| Error::io(&log_dir, e))?;
    let job = JobArray {
        sweep: config.name.clone(),
        runs: plan.runs.len(),
        workers: workers.min(plan.runs.len()),
        binary: absolute(&options.binary)?,
        config: absolute(&options.config)?,
        results,
        log_dir,
        gpus_per_task: options.gpus_per_task,
        cpus_per_task: options.cpus_per_task,
        partition: options.partition.clone(),
        time: options.time.clone(),
        stale_after: options.stale_after,
    };
    let path = match &options.out {
        Some(out) => out.clone(),
        None => job.log_dir.join(format!("{}.sbatch", job.sweep)),
    };
    crate::fs::write_atomic(&path, render(&job).as_bytes())?;
    Ok(SlurmScript { path, job })
}

/// The first lines of every script `render` writes: how `--out` recognises an earlier one.
const SCRIPT_HEADER: &str = "#!/bin/bash\n# Written by `sweeplaw slurm` for sweep ";

/// The sbatch script of a job array.
pub fn render(job: &JobArray) -> String {
    let mut s = String::from(SCRIPT_HEADER);
    s += &format!(
        "{} ({} runs, {} array tasks).\n\
         # Each task is one worker (`sweeplaw sweep --worker i/{}`); workers claim runs in\n\
         # runs/<id>/claim.json, so submitting this script again trains only what is missing.\n",
        job.sweep, job.runs, job.workers, job.workers
    );
    let mut directive = |line: String| s += &format!("#SBATCH {line}\n");
    directive(format!("--job-name=sweeplaw-{}", job.sweep));
    directive(format!("--array=0-{}", job.workers - 1));
    directive("--ntasks=1".into());
    if let Some(cpus) = job.cpus_per_task {
        directive(format!("--cpus-per-task={cpus}"));
    }
    if job.gpus_per_task > 0 {
        directive(format!("--gpus-per-task={}", job.gpus_per_task));
    }
    if let Some(partition) = &job.partition {
        directive(format!("--partition={partition}"));
    }
    if let Some(time) = &job.time {
        directive(format!("--time={time}"));
    }
    directive(format!("--output={}/%A_%a.out", job.log_dir.display()));
    s += "set -euo pipefail\n";
    s += &format!("SWEEPLAW=\"${{SWEEPLAW:-{}}}\"\n", job.binary.display());
    s += &format!(
        "exec \"$SWEEPLAW\" sweep {} --results {} --worker \"$SLURM_ARRAY_TASK_ID/{}\" --stale-after {} --quiet\n",
        shell_quote(&job.config.display().to_string()),
        shell_quote(&job.results.display().to_string()),
        job.workers,
        job.stale_after
    );
    s
}

/// The flags that do not depend on the config: usage errors, before anything is read.
fn check_options(options: &SlurmOptions) -> Result<()> {
    if options.workers == Some(0) {
        return Err(Error::Usage("--workers must be at least 1".into()));
    }
    if options.cpus_per_task == Some(0) {
        return Err(Error::Usage("--cpus-per-task must be at least 1 (leave it out to take Slurm's default)".into()));
    }
    for (flag, value) in [("--partition", &options.partition), ("--time", &options.time)] {
        if let Some(value) = value {
            check_sbatch_value(flag, value)?;
        }
    }
    if let Some(time) = &options.time {
        check_time(time)?;
    }
    if !(options.stale_after > 0.0) {
        return Err(Error::Usage("--stale-after must be a positive number of seconds".into()));
    }
    Ok(())
}

/// A Slurm time limit in one of the formats sbatch accepts: minutes, MM:SS, HH:MM:SS, D-HH,
/// D-HH:MM, D-HH:MM:SS (or UNLIMITED / INFINITE). Minutes and seconds after the first field
/// are below 60, and hours after a day count below 24.
fn check_time(time: &str) -> Result<()> {
    let bad = || {
        Error::Usage(format!(
            "--time {time:?}: not a Slurm time limit (minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS, e.g. 2:00:00 or 1-12)"
        ))
    };
    if ["unlimited", "infinite"].contains(&time.to_ascii_lowercase().as_str()) {
        return Ok(());
    }
    let number = |field: &str| -> Option<u64> {
        let digits = !field.is_empty() && field.len() <= 9 && field.bytes().all(|b| b.is_ascii_digit());
        if digits {
            field.parse().ok()
        } else {
            None
        }
    };
    let (days, clock) = match time.split_once('-') {
        Some((days, clock)) => (Some(number(days).ok_or_else(bad)?), clock),
        None => (None, time),
    };
    let fields: Vec<u64> = clock.split(':').map(number).collect::<Option<_>>().ok_or_else(bad)?;
    // With days the fields are hours[:minutes[:seconds]]; without, minutes[:seconds] or
    // hours:minutes:seconds, whose first field has no bound.
    let first = if days.is_some() { 24 } else { u64::MAX };
    let bounds = [first, 60, 60];
    if fields.len() > bounds.len() {
        return Err(bad());
    }
    if fields.iter().zip(bounds).any(|(&value, bound)| value >= bound) {
        return Err(bad());
    }
    Ok(())
}

/// `text` in single quotes for a POSIX shell.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// A value that goes into an `#SBATCH` line: no spaces, quotes or newlines.
fn check_sbatch_value(flag: &str, value: &str) -> Result<()> {
    let ok = !value.is_empty() && value.chars().all(|c| c.is_ascii_alphanumeric() || "_.,:=+-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!("{flag} {value:?}: only letters, digits and _.,:=+- are allowed")))
    }
}

/// Paths in `#SBATCH --output` are not shell-quoted: refuse whitespace, quotes and `%`.
fn check_plain_path(flag: &str, path: &Path) -> Result<()> {
    let text = path.display().to_string();
    if text.chars().any(|c| c.is_whitespace() || c.is_control() || "'\"%\\$`".contains(c)) {
        return Err(Error::Usage(format!(
            "{flag} {text:?}: the path goes into #SBATCH lines; use one without spaces, quotes, %, $ or backslashes"
        )));
    }
    Ok(())
}

/// `--out` may receive the script: not the config, not among a sweep directory's records (this
/// sweep's `sweep_dir`, or any sweep directory above `out`, except in its `slurm/` folder), and not an existing file other than a script this command wrote. Paths
/// are compared resolved (links, `..`), so another spelling of a refused path is refused too.
fn check_out(out: &Path, config: &Path, sweep_dir: &Path) -> Result<()> {
    let refuse = |why: String| Err(Error::Usage(format!("--out {}: {why}", out.display())));
    let target = resolved(out)?;
    if target == resolved(config)? {
        return refuse("is the config; the script would replace it (give another path)".into());
    }
    let log_dir = resolved(&sweep_dir.join("slurm"))?;
    if log_dir.starts_with(&target) {
        return refuse(format!(
            "is a folder the sweep's records go in ({}); give the path of the script file",
            log_dir.display()
        ));
    }
    let mut sweep_dirs = vec![resolved(sweep_dir)?];
    sweep_dirs.extend(target.ancestors().skip(1).filter(|dir| is_sweep_dir(dir)).map(Path::to_path_buf));
    for dir in sweep_dirs {
        if target.starts_with(&dir) && !target.starts_with(dir.join("slurm")) {
            return refuse(format!(
                "lies inside the sweep directory {} among its records; write the script outside it or under its slurm/ folder",
                dir.display()
            ));
        }
    }
    match std::fs::symlink_metadata(out) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(out, e)),
        Ok(meta) if meta.is_dir() => refuse("is a directory; give the path of the script file".into()),
        Ok(_) => {
            let mut head = Vec::new();
            if let Ok(file) = std::fs::File::open(out) {
                use std::io::Read;
                let _ = file.take(SCRIPT_HEADER.len() as u64).read_to_end(&mut head);
            }
            if head == SCRIPT_HEADER.as_bytes() {
                Ok(())
            } else {
                refuse(
                    "exists and is not an sbatch script written by `sweeplaw slurm`; refusing to overwrite it".into(),
                )
            }
        }
    }
}

/// A folder holding a sweep's records: its runs/ and its plan.json or sweep.toml.
fn is_sweep_dir(dir: &Path) -> bool {
    dir.join("runs").is_dir() && (dir.join("plan.json").is_file() || dir.join("sweep.toml").is_file())
}

/// `path` absolute, with its links resolved as far as it exists and `.`/`..` applied, so two
/// spellings of one file compare equal whether it exists or not.
fn resolved(path: &Path) -> Result<PathBuf> {
    use std::path::Component;
    let mut result = PathBuf::new();
    for component in absolute(path)?.components() {
        match component {
            Component::CurDir => {}
            // `result` has no links left, so dropping its last name is what `..` does.
            Component::ParentDir => {
                result.pop();
            }
            Component::Normal(name) => {
                result.push(name);
                if let Ok(real) = result.canonicalize() {
                    result = real;
                }
            }
            Component::RootDir | Component::Prefix(_) => result.push(component),
        }
    }
    Ok(result)
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> JobArray {
        JobArray {
            sweep: "smoke".into(),
            runs: 8,
            workers: 4,
            binary: "/opt/sweeplaw/bin/sweeplaw".into(),
            config: "/home/me/configs/smoke.toml".into(),
            results: "/shared/results".into(),
            log_dir: "/shared/results/smoke/slurm".into(),
            gpus_per_task: 1,
            cpus_per_task: Some(8),
            partition: Some("gpu".into()),
            time: Some("2:00:00".into()),
            stale_after: 120.0,
        }
    }

    #[test]
    fn the_script_is_a_job_array_of_sweep_workers() {
        let text = render(&job());
        let expected = "#SBATCH --job-name=sweeplaw-smoke\n\
                        #SBATCH --array=0-3\n\
                        #SBATCH --ntasks=1\n\
                        #SBATCH --cpus-per-task=8\n\
                        #SBATCH --gpus-per-task=1\n\
                        #SBATCH --partition=gpu\n\
                        #SBATCH --time=2:00:00\n\
                        #SBATCH --output=/shared/results/smoke/slurm/%A_%a.out\n\
                        set -euo pipefail\n\
                        SWEEPLAW=\"${SWEEPLAW:-/opt/sweeplaw/bin/sweeplaw}\"\n\
                        exec \"$SWEEPLAW\" sweep '/home/me/configs/smoke.toml' --results '/shared/results' \
                        --worker \"$SLURM_ARRAY_TASK_ID/4\" --stale-after 120 --quiet\n";
        assert!(text.starts_with("#!/bin/bash\n# Written by `sweeplaw slurm` for sweep smoke (8 runs, 4 array tasks)"));
        assert!(text.ends_with(expected), "{text}");
    }

    #[test]
    fn optional_directives_are_left_out() {
        let job = JobArray { gpus_per_task: 0, cpus_per_task: None, partition: None, time: None, ..job() };
        let text = render(&job);
        for absent in ["--gpus-per-task", "--cpus-per-task", "--partition", "--time"] {
            assert!(!text.contains(absent), "{absent} in {text}");
        }
    }

    #[test]
    fn shell_quoting_survives_quotes() {
        assert_eq!(shell_quote("a'b c"), r"'a'\''b c'");
    }

    #[test]
    fn sbatch_values_refuse_injection() {
        assert!(check_sbatch_value("--partition", "gpu-a100").is_ok());
        assert!(check_sbatch_value("--time", "1-00:00:00").is_ok());
        for bad in ["gpu\n#SBATCH --uid=0", "a b", "", "x;rm"] {
            assert!(check_sbatch_value("--partition", bad).is_err(), "{bad:?}");
        }
        assert!(check_plain_path("--results", Path::new("/a b")).is_err());
        assert!(check_plain_path("--results", Path::new("/shared/results")).is_ok());
    }

    #[test]
    fn time_limits_take_slurms_formats_only() {
        for good in
            ["30", "0", "90:30", "2:00:00", "100:00:00", "1-12", "1-12:30", "1-00:00:00", "UNLIMITED", "infinite"]
        {
            assert!(check_time(good).is_ok(), "{good:?}");
        }
        for bad in
            ["banana", "", "1h", "2:00:00:00", "1:60", "1:00:60", "1-24", "1-", "-1", ":30", "1::00", "1-2-3", "1.5"]
        {
            let err = check_time(bad).expect_err(bad).to_string();
            assert!(err.contains("--time") && err.contains("HH:MM:SS") && !err.contains('\n'), "{bad:?}: {err}");
        }
    }

    #[test]
    fn impossible_resources_are_refused_before_the_config_is_read() {
        let options = SlurmOptions {
            config: "/nonexistent/sweep.toml".into(),
            results: "/nonexistent/results".into(),
            workers: None,
            gpus_per_task: 0,
            cpus_per_task: Some(0),
            partition: None,
            time: None,
            out: None,
            binary: "/bin/true".into(),
            stale_after: 120.0,
            reuse: Vec::new(),
        };
        let err = write_script(&options).unwrap_err().to_string();
        assert!(err.contains("--cpus-per-task must be at least 1"), "{err}");
        let options = SlurmOptions { cpus_per_task: Some(4), time: Some("banana".into()), ..options };
        assert!(write_script(&options).unwrap_err().to_string().contains("--time \"banana\""));
    }
}
