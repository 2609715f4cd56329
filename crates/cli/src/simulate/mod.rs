//! `arbor simulate`: devices that send values to a running Arbor server the
//! way real ones do, over the device HTTP API (`/external/api/batch/update`,
//! every datastream of the device in one request), at a fixed total rate.
//!
//! It is a client like any other: it logs in to the management API to read
//! the template and provision devices, then speaks only the device API with
//! the devices' tokens. Tokens can be kept in a file (one a line, written as
//! each device is provisioned) so the next run drives the same devices.
//!
//! The schedule is open-loop: request k is due at k / rate seconds whatever
//! the answers, at most `--concurrency` are in flight, and a request that
//! cannot start within a second of its time is counted as missed rather
//! than queued without bound.

mod api;
mod signal;
mod stats;

use anyhow::{Context, Result, bail};
use api::{Api, Template};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use reqwest::{Client, Url};
use signal::Signal;
use stats::{Histogram, Stats, millis};
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, MissedTickBehavior};

/// The server's default limit of device API requests per second and device
/// (`device_api.requests_per_second`); beyond it answers are 429.
const SERVER_DEVICE_RATE: f64 = 50.0;

/// How long in-flight requests may take to finish once the run ends.
const DRAIN: Duration = Duration::from_secs(10);

/// How often the progress line is printed when standard error is not a
/// terminal (a log, CI).
const PLAIN_PROGRESS_EVERY: Duration = Duration::from_secs(5);

#[derive(Args)]
pub struct SimulateArgs {
    /// The Arbor server to drive.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// The user who reads the template and provisions devices.
    #[arg(long)]
    email: String,
    /// The user's password. Better from ARBOR_PASSWORD or typed on standard
    /// input (not echoed): a flag shows in `ps`.
    #[arg(long, env = "ARBOR_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// The device template: its datastreams are what the devices send, and
    /// new devices are of it.
    #[arg(long)]
    template: i64,
    /// The org new devices are provisioned in (default: the org you act in).
    #[arg(long)]
    org: Option<i64>,
    /// How many devices send.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    devices: u32,
    /// Requests per second in total, spread evenly over the devices.
    #[arg(long, default_value_t = 5.0)]
    rate: f64,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long)]
    duration: Option<f64>,
    /// A file of device tokens, one a line: the devices to reuse. Devices
    /// provisioned because it holds fewer than --devices are appended to it.
    #[arg(long)]
    tokens: Option<PathBuf>,
    /// At most this many requests in flight.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    concurrency: u32,
}

/// One simulated device: its request URL with the token, and a signal per
/// datastream.
struct Device {
    url: Url,
    signals: Vec<(String, Signal)>,
}

impl Device {
    /// The next `batch/update` request: every datastream's value at `t`.
    fn request(&mut self, t: f64, rng: &mut impl Rng) -> Url {
        let mut url = self.url.clone();
        {
            let mut query = url.query_pairs_mut();
            for (pin, signal) in &mut self.signals {
                query.append_pair(pin, &signal.sample(t, rng));
            }
        }
        url
    }
}

pub async fn run(args: SimulateArgs) -> Result<()> {
    if !(args.rate.is_finite() && args.rate > 0.0 && args.rate <= 1_000_000.0) {
        bail!("--rate must be a number of requests per second above 0 (at most 1000000)");
    }
    let duration = match args.duration {
        None => None,
        Some(secs) if secs.is_finite() && secs > 0.0 && secs < 1e9 => {
            Some(Duration::from_secs_f64(secs))
        }
        Some(_) => bail!("--duration must be a number of seconds above 0"),
    };
    let base = server_url(&args.server)?;
    let http = Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(args.concurrency as usize)
        .tcp_nodelay(true)
        .user_agent(concat!("arbor-simulate/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot set up the HTTP client")?;

    let password = password(args.password.clone(), &args.email)?;
    let api = Api::login(http.clone(), base.clone(), &args.email, &password).await?;
    let template = api.template(args.template).await?;
    if template.datastreams.is_empty() {
        bail!(
            "device template {} ({:?}) has no datastreams: nothing to simulate",
            template.id,
            template.name
        );
    }
    let tokens = device_tokens(&api, &http, &base, &args, &template).await?;

    let mut rng = SmallRng::from_rng(&mut rand::rng());
    let endpoint = base.join("external/api/batch/update")?;
    let devices: Vec<Device> = tokens
        .iter()
        .map(|token| {
            let mut url = endpoint.clone();
            url.query_pairs_mut().append_pair("token", token);
            let signals = template
                .datastreams
                .iter()
                .filter_map(|ds| Some((format!("V{}", ds.pin), Signal::new(ds, &mut rng)?)))
                .collect();
            Device { url, signals }
        })
        .collect();
    if devices.first().is_none_or(|d| d.signals.is_empty()) {
        bail!(
            "device template {} has no datastream a value can be made for (enums without values)",
            template.id
        );
    }

    let per_device = args.rate / f64::from(args.devices);
    let pins: Vec<String> = template
        .datastreams
        .iter()
        .map(|ds| format!("V{} {}", ds.pin, ds.name))
        .collect();
    eprintln!(
        "simulating {} devices of template {:?} ({}) at {} requests/s ({per_device:.2}/s each) \
         against {base}{}",
        devices.len(),
        template.name,
        pins.join(", "),
        args.rate,
        match duration {
            Some(d) => format!(" for {} s", d.as_secs_f64()),
            None => "; Ctrl-C stops".to_owned(),
        }
    );
    if per_device > SERVER_DEVICE_RATE {
        eprintln!(
            "warning: {per_device:.0} requests/s per device is above the server's default limit \
             of {SERVER_DEVICE_RATE} (device_api.requests_per_second): expect 429 answers, \
             or pass more --devices"
        );
    }

    let schedule = Schedule {
        rate: args.rate,
        duration,
        concurrency: args.concurrency,
    };
    let (stats, elapsed, unfinished) = drive(devices, &schedule, http, rng).await;
    print_summary(&stats, elapsed, unfinished, &template, &args, tokens.len());
    if stats.ok == 0 && stats.done() > 0 {
        let first = stats
            .first_errors
            .first()
            .map(|(failure, said)| format!("; first: {failure} {said}"))
            .unwrap_or_default();
        bail!(
            "no request was stored: {}{first}",
            stats.failures().replace('×', "x")
        );
    }
    Ok(())
}

/// `--server` as a base URL that paths join onto. Plain HTTP only: Arbor
/// serves plain HTTP itself (TLS ends at a proxy in front of it), so the
/// simulator can always be pointed at the address Arbor listens on.
fn server_url(given: &str) -> Result<Url> {
    let url = Url::parse(given).ok().filter(Url::has_host);
    let mut url = match url {
        Some(url) if url.scheme() == "http" => url,
        Some(url) if url.scheme() == "https" => bail!(
            "--server {given:?}: the simulator speaks plain HTTP; point it at the http:// \
             address Arbor listens on (its --bind), not at a TLS proxy in front of it"
        ),
        _ => bail!("--server {given:?} is not an http:// URL of an Arbor server"),
    };
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url.set_query(None);
    Ok(url)
}

/// The password from the flag or ARBOR_PASSWORD, else from standard input:
/// typed without echo on a terminal, or the first line of a pipe.
fn password(given: Option<String>, email: &str) -> Result<String> {
    if let Some(password) = given {
        return Ok(password);
    }
    let terminal = [console::Term::stderr(), console::Term::stdout()]
        .into_iter()
        .find(console::Term::is_term);
    let password = match terminal {
        Some(term) if std::io::stdin().is_terminal() => {
            term.write_str(&format!("Password for {email}: "))?;
            term.read_secure_line()
                .context("cannot read the password from the terminal")?
        }
        _ => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("cannot read the password from standard input")?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    if password.is_empty() {
        bail!("no password given: set ARBOR_PASSWORD or type it on standard input");
    }
    Ok(password)
}

/// The tokens of the devices to drive: those of the tokens file first (each
/// checked with the server), then new devices, appended to the file one by
/// one as they are provisioned (a run stopped halfway loses none).
async fn device_tokens(
    api: &Api,
    http: &Client,
    base: &Url,
    args: &SimulateArgs,
    template: &Template,
) -> Result<Vec<String>> {
    let wanted = args.devices as usize;
    let mut tokens = match &args.tokens {
        Some(path) => read_tokens(path)?,
        None => Vec::new(),
    };
    let in_file = tokens.len();
    tokens.truncate(wanted);
    check_tokens(http, base, &tokens, args.tokens.as_deref()).await?;
    if tokens.len() == wanted {
        if let Some(path) = &args.tokens {
            eprintln!(
                "reusing {wanted} devices from {}{}",
                path.display(),
                if in_file > wanted {
                    format!(" ({in_file} in the file)")
                } else {
                    String::new()
                }
            );
        }
        return Ok(tokens);
    }

    let mut file = match &args.tokens {
        Some(path) => Some(TokenFile::open(path)?),
        None => None,
    };
    let new = wanted - tokens.len();
    let bar = ProgressBar::new(new as u64).with_style(
        ProgressStyle::with_template("provisioning {pos}/{len} devices {wide_bar}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let prefix: String = template.name.chars().take(40).collect();
    let reused = tokens.len();
    while tokens.len() < wanted {
        let name = format!("{prefix} sim {}", tokens.len() + 1);
        let token = match api.provision(&name, template.id, args.org).await {
            Ok(token) => token,
            Err(error) => {
                bar.abandon();
                return Err(error);
            }
        };
        if let Some(file) = &mut file {
            file.append(&token)?;
        }
        tokens.push(token);
        bar.inc(1);
    }
    bar.finish_and_clear();
    match &args.tokens {
        Some(path) if reused > 0 => eprintln!(
            "reusing {reused} devices from {} and provisioned {new} more (appended)",
            path.display()
        ),
        Some(path) => eprintln!(
            "provisioned {new} devices; their tokens are in {}",
            path.display()
        ),
        None => eprintln!(
            "provisioned {new} devices (pass --tokens FILE to keep their tokens and reuse them)"
        ),
    }
    Ok(tokens)
}

/// The tokens of a tokens file, in order, without blank lines or repeats; a
/// missing file holds none.
fn read_tokens(path: &Path) -> Result<Vec<String>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => bail!("cannot read the tokens file {}: {error}", path.display()),
    };
    let mut tokens: Vec<String> = Vec::new();
    for token in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !tokens.iter().any(|t| t == token) {
            tokens.push(token.to_owned());
        }
    }
    Ok(tokens)
}

/// Each reused token must still open its device: a device deleted or a
/// token regenerated since the file was written stops the run with the line
/// to remove, instead of a run of "Invalid token." answers.
/// `isHardwareConnected` is the one device call that changes nothing.
async fn check_tokens(
    http: &Client,
    base: &Url,
    tokens: &[String],
    file: Option<&Path>,
) -> Result<()> {
    let endpoint = base.join("external/api/isHardwareConnected")?;
    let permits = Arc::new(Semaphore::new(16));
    let mut checks = tokio::task::JoinSet::new();
    for (line, token) in tokens.iter().enumerate() {
        let mut url = endpoint.clone();
        url.query_pairs_mut().append_pair("token", token);
        let (http, permits) = (http.clone(), permits.clone());
        checks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let answer = match http.get(url).send().await {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) => {
                    let status = response.status().as_u16();
                    format!("{status} {}", response.text().await.unwrap_or_default())
                }
                Err(error) => api::transport_error(&error),
            };
            Err((line, answer))
        });
    }
    let mut refused = Vec::new();
    while let Some(check) = checks.join_next().await {
        if let Ok(Err(failure)) = check {
            refused.push(failure);
        }
    }
    refused.sort();
    if let Some((line, answer)) = refused.first() {
        let file = file.map_or_else(|| "the tokens file".to_owned(), |p| p.display().to_string());
        bail!(
            "{} of the {} tokens reused from {file} refused (token {}: {}): a device deleted or \
             its token regenerated; remove such lines and the run provisions new devices in \
             their place",
            refused.len(),
            tokens.len(),
            line + 1,
            answer.trim(),
        );
    }
    Ok(())
}

/// A tokens file opened to append to; readable only by its owner (the
/// tokens are the devices' secrets).
struct TokenFile {
    file: std::fs::File,
    path: PathBuf,
}

impl TokenFile {
    fn open(path: &Path) -> Result<TokenFile> {
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let cannot = |error: std::io::Error| {
            anyhow::anyhow!("cannot write the tokens file {}: {error}", path.display())
        };
        let mut file = options.open(path).map_err(cannot)?;
        // A last line without its newline is completed first.
        let text = std::fs::read(path).map_err(cannot)?;
        if text.last().is_some_and(|&b| b != b'\n') {
            file.write_all(b"\n").map_err(cannot)?;
        }
        Ok(TokenFile {
            file,
            path: path.to_owned(),
        })
    }

    fn append(&mut self, token: &str) -> Result<()> {
        writeln!(self.file, "{token}")
            .and_then(|()| self.file.flush())
            .with_context(|| format!("cannot write the tokens file {}", self.path.display()))
    }
}

struct Schedule {
    rate: f64,
    duration: Option<Duration>,
    concurrency: u32,
}

fn lock(stats: &Mutex<Stats>) -> MutexGuard<'_, Stats> {
    // A panicked request task leaves counts that are still counts.
    stats
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Sends the schedule's requests until its duration or Ctrl-C, round-robin
/// over the devices, then waits for those in flight. Answers the counts, the
/// time it ran and how many requests were still unanswered at the end.
async fn drive(
    mut devices: Vec<Device>,
    schedule: &Schedule,
    http: Client,
    mut rng: SmallRng,
) -> (Stats, Duration, u64) {
    let stats = Arc::new(Mutex::new(Stats::default()));
    let permits = Arc::new(Semaphore::new(schedule.concurrency as usize));
    let rate = schedule.rate;
    let total = schedule
        .duration
        .map(|d| (rate * d.as_secs_f64()).ceil() as u64);
    // Requests more than a second late are given up, not queued.
    let backlog = (rate.ceil() as u64).max(1);
    let mut ticker =
        tokio::time::interval(Duration::from_secs_f64((1.0 / rate).clamp(0.001, 0.05)));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let start = Instant::now();
    let mut progress = Progress::new(start);
    let mut report =
        tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let (mut issued, mut next) = (0u64, 0usize);
    loop {
        tokio::select! {
            _ = &mut ctrl_c => break,
            _ = report.tick() => progress.update(&stats),
            _ = ticker.tick() => {
                let elapsed = start.elapsed();
                let t = elapsed.as_secs_f64();
                // The first request goes out at once, then one every 1/rate.
                let mut due = (rate * t) as u64 + 1;
                if let Some(total) = total {
                    due = due.min(total);
                }
                if due > issued + backlog {
                    lock(&stats).missed += due - issued - backlog;
                    issued = due - backlog;
                }
                while issued < due {
                    let Ok(permit) = permits.clone().try_acquire_owned() else {
                        break;
                    };
                    let url = devices[next].request(t, &mut rng);
                    next = (next + 1) % devices.len();
                    issued += 1;
                    lock(&stats).sent += 1;
                    tokio::spawn(send(http.clone(), url, stats.clone(), permit));
                }
                // The run lasts its duration, the last request 1/rate before
                // its end, so answers/s compares with --rate.
                if let (Some(duration), Some(total)) = (schedule.duration, total)
                    && elapsed >= duration
                {
                    lock(&stats).missed += total - issued;
                    break;
                }
            }
        }
    }
    let _ = tokio::time::timeout(DRAIN, permits.acquire_many(schedule.concurrency)).await;
    let elapsed = start.elapsed();
    progress.finish();
    let stats = lock(&stats).clone();
    let unfinished = stats.sent - stats.done();
    (stats, elapsed, unfinished)
}

/// One device API request; its answer goes into `stats`.
async fn send(http: Client, url: Url, stats: Arc<Mutex<Stats>>, _permit: OwnedSemaphorePermit) {
    let started = Instant::now();
    match http.get(url).send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            // Read to the end (an empty body on success), so the connection
            // is reused.
            let body = response.text().await.ok();
            let latency = started.elapsed();
            lock(&stats).answered(status, latency, body.filter(|_| status != 200));
        }
        Err(error) => lock(&stats).unanswered(api::transport_error(&error)),
    }
}

/// The progress display: one status line redrawn every second on a
/// terminal, else a plain line every few seconds.
struct Progress {
    bar: Option<ProgressBar>,
    start: Instant,
    last: Instant,
}

impl Progress {
    fn new(start: Instant) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{spinner} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        Progress {
            bar,
            start,
            last: start,
        }
    }

    fn update(&mut self, stats: &Mutex<Stats>) {
        let now = Instant::now();
        if self.bar.is_none() && now - self.last < PLAIN_PROGRESS_EVERY {
            return;
        }
        let line = {
            let mut stats = lock(stats);
            let line = stats.progress_line(now - self.start, now - self.last);
            stats.recent = Histogram::default();
            line
        };
        self.last = now;
        match &self.bar {
            Some(bar) => bar.set_message(line),
            None => eprintln!("{line}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn print_summary(
    stats: &Stats,
    elapsed: Duration,
    unfinished: u64,
    template: &Template,
    args: &SimulateArgs,
    devices: usize,
) {
    let secs = elapsed.as_secs_f64();
    println!(
        "simulated {devices} devices of template {:?} for {secs:.1} s: {} requests sent, {} \
         stored, {} failed, {} missed, {unfinished} unanswered",
        template.name,
        stats.sent,
        stats.ok,
        stats.failed_total(),
        stats.missed,
    );
    println!(
        "rate: {:.1} answers/s ({} asked)",
        stats.done() as f64 / secs.max(1e-3),
        args.rate
    );
    let latency = &stats.latency;
    if let (Some(p50), Some(p90), Some(p99), Some(max)) = (
        latency.quantile(0.5),
        latency.quantile(0.9),
        latency.quantile(0.99),
        latency.max(),
    ) {
        println!(
            "latency: p50 {}, p90 {}, p99 {}, max {}",
            millis(p50),
            millis(p90),
            millis(p99),
            millis(max)
        );
    }
    if !stats.failed.is_empty() {
        println!("failures: {}", stats.failures());
        println!("first errors:");
        for (failure, said) in &stats.first_errors {
            println!("  {failure} {said}");
        }
    }
    if stats.missed > 0 {
        println!(
            "missed: {} requests were not sent on time because {} were in flight \
             (--concurrency); the server or this machine is the limit",
            stats.missed, args.concurrency
        );
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn server_urls_get_a_trailing_slash_and_other_schemes_are_refused() {
        assert_eq!(
            server_url("http://127.0.0.1:8080").unwrap().as_str(),
            "http://127.0.0.1:8080/"
        );
        assert_eq!(
            server_url("http://10.0.0.5:8080/arbor?x=1")
                .unwrap()
                .join("external/api/get")
                .unwrap()
                .as_str(),
            "http://10.0.0.5:8080/arbor/external/api/get"
        );
        let error = server_url("https://iot.example.com")
            .unwrap_err()
            .to_string();
        assert!(error.contains("speaks plain HTTP"), "{error}");
        for bad in ["127.0.0.1:8080", "ftp://x", "not a url"] {
            let error = server_url(bad).unwrap_err().to_string();
            assert!(error.contains("is not an http:// URL"), "{error}");
        }
    }

    #[test]
    fn a_tokens_file_is_read_without_blanks_or_repeats_and_appended_after_a_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        assert!(read_tokens(&path).unwrap().is_empty());
        std::fs::write(&path, "a\n\n  b \na\nc").unwrap();
        assert_eq!(read_tokens(&path).unwrap(), ["a", "b", "c"]);
        let mut file = TokenFile::open(&path).unwrap();
        file.append("d").unwrap();
        assert_eq!(read_tokens(&path).unwrap(), ["a", "b", "c", "d"]);
        assert!(std::fs::read_to_string(&path).unwrap().ends_with("c\nd\n"));
    }
}
