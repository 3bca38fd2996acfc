//! `argus monitor` end to end against a real Ethereum node (ganache from npm, on 127.0.0.1):
//! real transactions and token logs, a real reorg (`evm_snapshot`/`evm_revert`), a webhook that
//! fails once, Prometheus metrics checked by promtool, and a history re-run whose alerts must
//! equal the live ones.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Node {
    child: Child,
    port: u16,
    next_id: u64,
}

impl Node {
    /// Stops the node the way an operator would (SIGINT: ganache flushes its database).
    fn stop(mut self) {
        let _ = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http(port: u16, method: &str, path: &str, body: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    // One write: a server that reads the request once must see all of it.
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (_, body) = out.split_once("\r\n\r\n")?;
    Some(body.to_owned())
}

impl Node {
    fn start() -> Node {
        Node::start_at(free_port(), None)
    }

    /// A node on `port`, keeping its chain in `db` when given (so a restart resumes it).
    fn start_at(port: u16, db: Option<&Path>) -> Node {
        Node::start_chain(port, db, 1337)
    }

    fn start_chain(port: u16, db: Option<&Path>, chain_id: u64) -> Node {
        let bin = root().join("deploy/ganache/node_modules/.bin/ganache");
        assert!(bin.exists(), "{} is missing: run `make ganache` (npm ci in deploy/ganache)", bin.display());
        let mut cmd = Command::new(bin);
        if let Some(db) = db {
            cmd.arg("--database.dbPath").arg(db);
        }
        let child = cmd
            .args(["--server.host", "127.0.0.1", "--server.port", &port.to_string()])
            .args(["--wallet.deterministic", "--chain.chainId", &chain_id.to_string(), "--logging.quiet"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut node = Node { child, port, next_id: 1 };
        let t0 = Instant::now();
        while node.try_call("eth_blockNumber", json!([])).is_none() {
            assert!(t0.elapsed() < Duration::from_secs(60), "ganache did not start");
            std::thread::sleep(Duration::from_millis(200));
        }
        node
    }

    fn try_call(&mut self, method: &str, params: Value) -> Option<Value> {
        self.next_id += 1;
        let body = json!({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params}).to_string();
        let resp: Value = serde_json::from_str(&http(self.port, "POST", "/", &body)?).ok()?;
        assert!(resp.get("error").is_none(), "{method}: {resp}");
        resp.get("result").cloned()
    }

    fn call(&mut self, method: &str, params: Value) -> Value {
        self.try_call(method, params).unwrap_or_else(|| panic!("{method}: no answer"))
    }

    /// Sends a transaction from an unlocked account; returns its receipt (mined at once).
    fn send(&mut self, from: &str, to: Option<&str>, value_wei: u128, data: &str) -> Value {
        let receipt = self.try_send(from, to, value_wei, data);
        assert_eq!(receipt["status"], "0x1", "transaction reverted: {receipt}");
        receipt
    }

    fn try_send(&mut self, from: &str, to: Option<&str>, value_wei: u128, data: &str) -> Value {
        let mut tx = json!({"from": from, "value": format!("0x{value_wei:x}"), "data": data, "gas": "0x500000"});
        if let Some(to) = to {
            tx["to"] = json!(to);
        }
        let hash = self.call("eth_sendTransaction", json!([tx]));
        self.call("eth_getTransactionReceipt", json!([hash]))
    }

    fn block_number(&mut self) -> u64 {
        let n = self.call("eth_blockNumber", json!([]));
        u64::from_str_radix(n.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
    }
}

/// ganache's deterministic accounts.
const ACCT: [&str; 10] = [
    "0x90f8bf6a479f320ead074411a4b0e7944ea8c9c1",
    "0xffcf8fdee72ac11b5c542428b35eef5769c409f0",
    "0x22d491bde2303f2f43325b2108d26f1eaba1e32b",
    "0xe11ba2b4d45eaed5996cd0823791e0c93114882d",
    "0xd03ea8624c8c5987235048901fb614fdca89b117",
    "0x95ced938f7991cd0dfcb48f0a06a40fa1af46ebc",
    "0x3e5e9111ae8eb78fe1cc3bb8915d5d461f3ef9a9",
    "0x28a8746e75304c0780e011bed21c72cd78cd535e",
    "0xaca94ef8bd5ffee41947b4585a84bda5a3d3da6e",
    "0x1df62f291b2e969fb0849d99d9ce41e2f137006e",
];
const SCAM: &str = "0x80d7bb18521acbef32d7906502ebe94928690e93";
const ETH: u128 = 1_000_000_000_000_000_000;
const MAX: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

fn word_addr(a: &str) -> String {
    format!("{:0>64}", a.trim_start_matches("0x"))
}
fn word_u(v: u128) -> String {
    format!("{v:064x}")
}

/// The test contracts (deploy/ganache/contracts: an ERC-20 and a token puller), compiled by
/// solc-js from npm: bytecode and method selectors.
struct Contracts(Value);

impl Contracts {
    fn compile() -> Contracts {
        let out = Command::new("node").arg(root().join("deploy/ganache/compile.js")).output().unwrap();
        assert!(out.status.success(), "solc: {}", String::from_utf8_lossy(&out.stderr));
        Contracts(serde_json::from_slice(&out.stdout).unwrap())
    }
    fn bytecode(&self, name: &str) -> &str {
        self.0[name]["bytecode"].as_str().unwrap()
    }
    /// Calldata: the method's selector and its arguments as hex words.
    fn call(&self, name: &str, sig: &str, words: &[String]) -> String {
        format!("0x{}{}", self.0[name]["methods"][sig].as_str().unwrap(), words.concat())
    }
}

/// A webhook receiver: answers 500 to the first POST, 200 after; keeps the bodies.
fn webhook() -> (u16, Arc<Mutex<Vec<Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let bodies = got.clone();
    std::thread::spawn(move || {
        let mut first = true;
        for s in listener.incoming() {
            let Ok(mut s) = s else { continue };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut len = 0;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; len];
            let _ = r.read_exact(&mut body);
            let status = if first { "500 Internal Server Error" } else { "204 No Content" };
            if !first {
                bodies.lock().unwrap().push(serde_json::from_slice(&body).unwrap());
            }
            first = false;
            let _ = write!(s, "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (port, got)
}

fn read_alerts(p: &Path) -> Vec<Value> {
    std::fs::read_to_string(p).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !ok() {
        assert!(t0.elapsed() < Duration::from_secs(60), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Stops a running monitor with SIGTERM, as systemd would; it must exit cleanly. Returns the
/// JSON summary it prints last on stderr.
fn stop(mut monitor: Child) -> Value {
    let st = Command::new("kill").args(["-TERM", &monitor.id().to_string()]).status().unwrap();
    assert!(st.success());
    let mut stderr = String::new();
    monitor.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(monitor.wait().unwrap().success(), "{stderr}");
    serde_json::from_str(stderr.lines().last().unwrap()).unwrap()
}

fn argus() -> Command {
    Command::new(env!("CARGO_BIN_EXE_argus"))
}

/// An empty scratch directory for one test.
fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Waits until the monitor serving metrics on `port` has its chain feed connected.
fn wait_connected(port: u16) {
    wait_for("the monitor to connect", || {
        http(port, "GET", "/metrics", "")
            .is_some_and(|m| m.lines().any(|l| l.starts_with("argus_chain_feed_connected") && l.ends_with(" 1")))
    });
}

#[test]
fn monitor_alerts_on_a_real_node_retracts_on_reorg_and_replays_history_identically() {
    let dir = fresh_dir("argus-monitor");
    let labels = dir.join("labels.csv");
    std::fs::write(
        &labels,
        format!("banned_address,wallet_tag,data_source\n{SCAM},Fake_Phishing1772,etherscan-phish-hack-list\n"),
    )
    .unwrap();
    let alerts_file = dir.join("alerts.jsonl");
    let contracts = Contracts::compile();
    let mut node = Node::start();

    let (hook_port, hooked) = webhook();
    let metrics_port = free_port();
    let monitor = argus()
        .args(["monitor", "--rpc", &format!("ws://127.0.0.1:{}", node.port), "--chain-id", "1337"])
        .arg("--labels")
        .arg(&labels)
        .arg("--alerts-jsonl")
        .arg(&alerts_file)
        .args(["--webhook", &format!("http://127.0.0.1:{hook_port}/alerts")])
        .arg("--webhook-dead-letter")
        .arg(dir.join("dead.jsonl"))
        .args(["--metrics-addr", &format!("127.0.0.1:{metrics_port}"), "--quiet"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_connected(metrics_port);
    // The live monitor's first block: the head when it connected.
    let start_block = node.block_number();
    let head_metric = |node_block: u64| format!("argus_chain_head_block{{chain=\"1337\"}} {node_block}");
    let processed =
        |n: u64| move || http(metrics_port, "GET", "/metrics", "").is_some_and(|m| m.contains(&head_metric(n)));

    // Benign traffic: deployments, token payouts, a router pulling what its user approved, ether
    // back and forth. None of it may raise an alert.
    let token = node.send(ACCT[0], None, 0, &format!("{}{}", contracts.bytecode("Token"), word_u(1_000_000 * ETH)));
    let token = token["contractAddress"].as_str().unwrap().to_owned();
    let router =
        node.send(ACCT[0], None, 0, contracts.bytecode("Sweeper"))["contractAddress"].as_str().unwrap().to_owned();
    let drainer =
        node.send(ACCT[7], None, 0, contracts.bytecode("Sweeper"))["contractAddress"].as_str().unwrap().to_owned();
    let transfer =
        |to: &str, v: u128| contracts.call("Token", "transfer(address,uint256)", &[word_addr(to), word_u(v)]);
    let approve =
        |to: &str, v: &str| contracts.call("Token", "approve(address,uint256)", &[word_addr(to), v.to_owned()]);
    for a in &ACCT[1..6] {
        node.send(ACCT[0], Some(&token), 0, &transfer(a, 1000 * ETH));
    }
    node.send(ACCT[1], Some(&token), 0, &approve(&router, &word_u(100 * ETH)));
    node.send(
        ACCT[1],
        Some(&router),
        0,
        &contracts.call("Sweeper", "pull(address,uint256)", &[word_addr(&token), word_u(100 * ETH)]),
    );
    node.send(ACCT[2], Some(ACCT[3]), ETH, "0x");
    node.send(ACCT[3], Some(ACCT[2]), ETH / 2, "0x");
    let benign_end = node.block_number();
    wait_for("the benign blocks", processed(benign_end));
    assert!(read_alerts(&alerts_file).is_empty(), "benign traffic raised: {:?}", read_alerts(&alerts_file));

    // 1. Ether to a labelled phishing address.
    node.send(ACCT[0], Some(SCAM), ETH, "0x");
    // 2. Ice phishing: account 1 approves a fresh EOA (account 9) for everything; it drains.
    node.send(ACCT[1], Some(&token), 0, &approve(ACCT[9], MAX));
    let drain = contracts.call(
        "Token",
        "transferFrom(address,address,uint256)",
        &[word_addr(ACCT[1]), word_addr(ACCT[9]), word_u(900 * ETH)],
    );
    node.send(ACCT[9], Some(&token), 0, &drain);
    // 3. Address poisoning: account 2 paid account 3; a zero-value transferFrom makes account 2
    //    appear to pay a look-alike of account 3 (no allowance needed for zero).
    let mimic = format!("{}{}{}", &ACCT[3][..6], "7".repeat(32), &ACCT[3][38..]);
    let poison = contracts.call(
        "Token",
        "transferFrom(address,address,uint256)",
        &[word_addr(ACCT[2]), word_addr(&mimic), word_u(0)],
    );
    node.send(ACCT[6], Some(&token), 0, &poison);
    // 4. Drainer sweep: three holders approve the drainer contract; its owner sweeps them.
    for a in &ACCT[3..6] {
        node.send(a, Some(&token), 0, &approve(&drainer, MAX));
    }
    let victims = [ACCT[3], ACCT[4], ACCT[5]].iter().map(|a| word_addr(a)).collect::<String>();
    let sweep = contracts.call(
        "Sweeper",
        "sweep(address,address[],address)",
        &[word_addr(&token), word_u(0x60), word_addr(ACCT[7]), word_u(3), victims],
    );
    node.send(ACCT[7], Some(&drainer), 0, &sweep);
    // 5. Account 8 sends five small amounts, then a hundred times as much.
    for _ in 0..5 {
        node.send(ACCT[8], Some(ACCT[0]), ETH / 10, "0x");
    }
    node.send(ACCT[8], Some(ACCT[6]), 10 * ETH, "0x");
    let before_reorg = node.block_number();
    wait_for("the attack blocks", processed(before_reorg));

    // 6. A reorg: a block paying the scam address is mined, then replaced by another block.
    let snap = node.call("evm_snapshot", json!([]));
    node.send(ACCT[5], Some(SCAM), ETH, "0x");
    let orphan_block = node.block_number();
    wait_for("the soon-orphaned block", processed(orphan_block));
    assert_eq!(node.call("evm_revert", json!([snap])), json!(true));
    node.send(ACCT[6], Some(ACCT[5]), ETH, "0x");
    assert_eq!(node.block_number(), orphan_block, "the replacement is at the same height");
    wait_for("the retraction", || read_alerts(&alerts_file).iter().any(|a| !a["retracts"].is_null()));
    let end_block = node.block_number();

    // Metrics: valid exposition (promtool), with the alerts counted.
    let metrics = http(metrics_port, "GET", "/metrics", "").unwrap();
    assert!(
        metrics.contains("argus_chain_alerts_total{chain=\"1337\",detector=\"ice-phishing\",severity=\"high\"} 1"),
        "{metrics}"
    );
    let promtool =
        Command::new("promtool").args(["check", "metrics"]).stdin(Stdio::piped()).output_with(metrics.as_bytes());
    assert!(promtool.status.success(), "promtool: {}", String::from_utf8_lossy(&promtool.stdout));

    // Stop (SIGTERM) and read the summary.
    let summary = stop(monitor);

    let alerts = read_alerts(&alerts_file);
    // Retractions repeat their alert's detector; group the alerts themselves.
    let by: HashMap<&str, Vec<&Value>> =
        alerts.iter().filter(|a| a["retracts"].is_null()).fold(HashMap::new(), |mut m, a| {
            m.entry(a["detector"].as_str().unwrap()).or_default().push(a);
            m
        });
    let mut detectors: Vec<&str> = by.keys().copied().collect();
    detectors.sort_unstable();
    assert_eq!(
        detectors,
        [
            "address-poisoning",
            "drainer-sweep",
            "ice-phishing",
            "ice-phishing-drain",
            "incident",
            "known-bad",
            "large-transfer"
        ]
    );
    let known = &by["known-bad"];
    assert_eq!(known.len(), 2, "live block and orphaned block");
    assert_eq!(known[0]["labels"][0]["label"], "Fake_Phishing1772");
    assert_eq!(known[0]["labels"][0]["source"], format!("{}/labels.csv", dir.file_name().unwrap().to_string_lossy()));
    let ice = &by["ice-phishing"];
    assert_eq!(ice.len(), 1, "approvals of contracts (router, drainer) are not ice phishing");
    assert_eq!(ice[0]["severity"], "high");
    assert!(ice[0]["reason"].as_str().unwrap().contains("an EOA with no transactions of its own"), "{}", ice[0]);
    assert!(ice[0]["reason"].as_str().unwrap().contains("an unlimited amount"), "{}", ice[0]);
    let drain = &by["ice-phishing-drain"][0];
    assert_eq!(drain["related"][0], ice[0]["id"]);
    let incidents: Vec<&Value> = by["incident"].iter().map(|a| &a["addresses"][0]["address"]).collect();
    assert!(incidents.contains(&&json!(ACCT[9])), "{incidents:?}");
    let poison = &by["address-poisoning"][0];
    assert_eq!(poison["addresses"][0]["address"], ACCT[2]);
    assert_eq!(poison["addresses"][1]["address"], mimic);
    assert_eq!(poison["addresses"][2]["address"], ACCT[3]);
    let sweep = &by["drainer-sweep"];
    assert_eq!(sweep.len(), 1);
    let swept: BTreeSet<&str> = sweep[0]["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["role"] == "victim")
        .map(|p| p["address"].as_str().unwrap())
        .collect();
    assert_eq!(swept, ACCT[3..6].iter().copied().collect());
    assert_eq!(sweep[0]["addresses"][0]["address"], drainer.as_str());
    assert!(by["large-transfer"][0]["reason"].as_str().unwrap().contains("100.0x"), "{}", by["large-transfer"][0]);
    // The retraction names the orphaned block's alert.
    let retraction = alerts.iter().find(|a| !a["retracts"].is_null()).unwrap();
    let orphaned = known.iter().find(|a| a["block_number"] == orphan_block).unwrap();
    assert_eq!(retraction["retracts"], orphaned["id"]);
    assert_eq!(summary["feeds"][0]["reorgs"], 1);
    assert_eq!(summary["feeds"][0]["orphaned"], 1);
    assert_eq!(summary["chains"]["1337"]["retracted"], 1);
    assert_eq!(
        summary["chains"]["1337"]["blocks"].as_u64().unwrap(),
        end_block - start_block + 2,
        "every block, the orphan too"
    );
    let latency = &summary["block_latency_ms"];
    eprintln!("block-to-alert latency on ganache: {latency}");
    assert!(latency["p99"].as_f64().unwrap() > 0.0);
    // Every alert reached the webhook despite its first failure.
    assert!(summary["webhook"]["retries"].as_u64().unwrap() >= 1, "{summary}");
    assert_eq!(summary["webhook"]["dead_lettered"], 0);
    let hooked: BTreeSet<String> =
        hooked.lock().unwrap().iter().map(|a| a["id"].as_str().unwrap().to_owned()).collect();
    let written: BTreeSet<String> = alerts.iter().map(|a| a["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(hooked, written);

    // History: the same blocks again, from the node, now with both ML models and a webhook that
    // is down: the rule alerts equal the live run's (minus the orphaned block's), the models
    // scored every block and the active addresses, and every alert is dead-lettered.
    let conf = dir.join("monitor.toml");
    std::fs::write(&conf, "[webhook_retry]\nattempts = 2\nbackoff_ms = 5\n").unwrap();
    let history = dir.join("history.jsonl");
    let out = argus()
        .args(["monitor", "--rpc", &format!("ws://127.0.0.1:{}", node.port), "--quiet"])
        .args(["--from-block", &start_block.to_string(), "--to-block", &end_block.to_string()])
        .arg("--labels")
        .arg(&labels)
        .arg("--alerts-jsonl")
        .arg(&history)
        .args(["--model", root().join("models/zoo/eth_tx_phishing").to_str().unwrap()])
        .args(["--address-model", root().join("models/zoo/eth_address_fraud").to_str().unwrap()])
        .args(["--webhook", &format!("http://127.0.0.1:{}/down", free_port())])
        .arg("--webhook-dead-letter")
        .arg(dir.join("history-dead.jsonl"))
        .arg("--config")
        .arg(&conf)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let replayed: Vec<Value> = read_alerts(&history);
    // Model alerts can join incidents, so incidents are compared only without models.
    let rules = |a: &&Value| {
        !["ml-tx", "ml-address", "incident"].contains(&a["detector"].as_str().unwrap())
            && a["retracts"].is_null()
            && a["block_number"].as_u64().unwrap() <= before_reorg
    };
    let ids = |v: Vec<&Value>| v.iter().map(|a| (a["id"].clone(), a["reason"].clone())).collect::<Vec<_>>();
    assert_eq!(ids(replayed.iter().filter(rules).collect()), ids(alerts.iter().filter(rules).collect()));
    for a in replayed.iter().filter(|a| a["detector"] == "ml-tx") {
        assert_eq!(a["model_version"], "eth_tx_phishing v1");
    }
    for a in replayed.iter().filter(|a| a["detector"] == "ml-address") {
        assert_eq!(a["model_version"], "eth_address_fraud v1");
        assert!(a["reason"].as_str().unwrap().contains(" received ("), "{a}");
        assert_eq!(a["addresses"][0]["role"], "subject");
    }
    let summary: Value = serde_json::from_str(stderr.lines().last().unwrap()).unwrap();
    assert_eq!(summary["chains"]["1337"]["score_errors"], 0, "the models scored every block");
    // The accounts that played traffic reached `address_min_txs` and were scored.
    assert!(summary["chains"]["1337"]["addresses_scored"].as_u64().unwrap() >= 3, "{summary}");
    assert_eq!(summary["feeds"][0]["backfilled"].as_u64().unwrap(), end_block - start_block + 1);
    let dead = read_alerts(&dir.join("history-dead.jsonl"));
    assert_eq!(dead.len(), replayed.len(), "every undelivered alert is in the dead-letter file");
    assert_eq!(summary["webhook"]["dead_lettered"].as_u64().unwrap() as usize, replayed.len());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn monitor_survives_a_node_restart_and_backfills_what_it_missed() {
    let dir = fresh_dir("argus-monitor-restart");
    let labels = dir.join("labels.txt");
    std::fs::write(&labels, format!("# one address per line\n{SCAM}\n")).unwrap();
    let alerts_file = dir.join("alerts.jsonl");
    let db = dir.join("chain");
    let port = free_port();
    let mut node = Node::start_at(port, Some(&db));
    let monitor = argus()
        .args(["monitor", "--rpc", &format!("ws://127.0.0.1:{port}"), "--quiet"])
        .arg("--labels")
        .arg(&labels)
        .arg("--alerts-jsonl")
        .arg(&alerts_file)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let count = || read_alerts(&alerts_file).iter().filter(|a| a["detector"] == "known-bad").count();
    // Paid until the monitor has seen one (it starts at the head once connected).
    wait_for("the first alert", || {
        node.send(ACCT[0], Some(SCAM), ETH, "0x");
        std::thread::sleep(Duration::from_millis(300));
        count() >= 1
    });
    // Every payment above is in its own block with an alert: wait for the newest one.
    let head = node.block_number();
    wait_for("the monitor to reach the head", || read_alerts(&alerts_file).iter().any(|a| a["block_number"] == head));
    let before = count();
    node.stop();
    // While the node is down the monitor retries; the node comes back with the same chain and
    // mines blocks the monitor has not seen.
    std::thread::sleep(Duration::from_millis(500));
    let mut node = Node::start_at(port, Some(&db));
    node.send(ACCT[1], Some(SCAM), ETH, "0x");
    node.send(ACCT[2], Some(SCAM), ETH, "0x");
    let last = node.block_number();
    wait_for("the alerts of the blocks mined after the restart", || count() >= before + 2);
    let summary = stop(monitor);
    assert!(summary["feeds"][0]["reconnects"].as_u64().unwrap() >= 1, "{summary}");
    assert_eq!(summary["feeds"][0]["last_block"].as_u64().unwrap(), last);
    // Every block once, in order: no duplicates after the reconnect, no holes.
    let blocks: Vec<u64> = read_alerts(&alerts_file).iter().map(|a| a["block_number"].as_u64().unwrap()).collect();
    assert!(blocks.windows(2).all(|w| w[0] < w[1]), "{blocks:?}");
    assert_eq!(blocks.len(), before + 2);
    assert_eq!(blocks.last(), Some(&last));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn one_monitor_watches_two_chains_and_keeps_them_apart() {
    let dir = fresh_dir("argus-monitor-chains");
    let labels = dir.join("labels.txt");
    std::fs::write(&labels, format!("{SCAM}\n")).unwrap();
    let alerts_file = dir.join("alerts.jsonl");
    let mut a = Node::start_chain(free_port(), None, 1337);
    let mut b = Node::start_chain(free_port(), None, 31337);
    let monitor = argus()
        .args([
            "monitor",
            "--quiet",
            "--rpc",
            &format!("ws://127.0.0.1:{}", a.port),
            "--rpc",
            &format!("ws://127.0.0.1:{}", b.port),
        ])
        .arg("--labels")
        .arg(&labels)
        .arg("--alerts-jsonl")
        .arg(&alerts_file)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let chains =
        || read_alerts(&alerts_file).iter().map(|a| a["chain_id"].as_u64().unwrap()).collect::<BTreeSet<u64>>();
    // Account 0 pays the scam address on chain A, account 1 on chain B, until both are seen.
    wait_for("alerts from both chains", || {
        a.send(ACCT[0], Some(SCAM), ETH, "0x");
        b.send(ACCT[1], Some(SCAM), ETH, "0x");
        std::thread::sleep(Duration::from_millis(300));
        chains().len() == 2
    });
    let summary = stop(monitor);
    assert_eq!(chains(), [1337, 31337].into_iter().collect());
    // Each chain's alerts name its own sender: the chains' states are not mixed.
    for alert in read_alerts(&alerts_file) {
        let sender = if alert["chain_id"] == 1337 { ACCT[0] } else { ACCT[1] };
        assert!(alert["addresses"].as_array().unwrap().iter().any(|p| p["address"] == sender), "{alert}");
        assert!(alert["id"].as_str().unwrap().starts_with(&format!("{}:", alert["chain_id"])));
    }
    let feed_chains: BTreeSet<u64> =
        summary["feeds"].as_array().unwrap().iter().map(|f| f["chain_id"].as_u64().unwrap()).collect();
    assert_eq!(feed_chains, [1337, 31337].into_iter().collect());
    assert!(summary["chains"]["1337"]["blocks"].as_u64().unwrap() >= 1);
    assert!(summary["chains"]["31337"]["blocks"].as_u64().unwrap() >= 1);
    let _ = std::fs::remove_dir_all(&dir);
}

trait OutputWith {
    fn output_with(&mut self, stdin: &[u8]) -> std::process::Output;
}

impl OutputWith for Command {
    fn output_with(&mut self, stdin: &[u8]) -> std::process::Output {
        let mut child = self.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child.wait_with_output().unwrap()
    }
}

#[test]
fn monitor_warns_of_pending_transactions_before_their_block() {
    let dir = fresh_dir("argus-monitor-pending");
    let labels = dir.join("labels.txt");
    std::fs::write(&labels, format!("{SCAM}\n")).unwrap();
    let alerts_file = dir.join("alerts.jsonl");
    let contracts = Contracts::compile();
    let mut node = Node::start();
    let token = node.send(ACCT[0], None, 0, &format!("{}{}", contracts.bytecode("Token"), word_u(1_000_000 * ETH)));
    let token = token["contractAddress"].as_str().unwrap().to_owned();
    let transfer = contracts.call("Token", "transfer(address,uint256)", &[word_addr(ACCT[1]), word_u(100 * ETH)]);
    node.send(ACCT[0], Some(&token), 0, &transfer);
    let metrics_port = free_port();
    let monitor = argus()
        .args(["monitor", "--rpc", &format!("ws://127.0.0.1:{}", node.port), "--pending", "--quiet"])
        .arg("--labels")
        .arg(&labels)
        .arg("--alerts-jsonl")
        .arg(&alerts_file)
        .args(["--metrics-addr", &format!("127.0.0.1:{metrics_port}")])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_connected(metrics_port);
    // With the miner stopped, a payment to a labelled address and an approval to a fresh EOA
    // wait in the mempool; benign ether between two accounts waits with them.
    node.call("miner_stop", json!([]));
    let send = |node: &mut Node, tx: Value| node.call("eth_sendTransaction", json!([tx])).as_str().unwrap().to_owned();
    let pay = send(&mut node, json!({"from": ACCT[0], "to": SCAM, "value": format!("0x{ETH:x}")}));
    let approve = contracts.call("Token", "approve(address,uint256)", &[word_addr(ACCT[8]), MAX.to_owned()]);
    let grant = send(&mut node, json!({"from": ACCT[1], "to": token, "data": approve, "gas": "0x500000"}));
    let benign = send(&mut node, json!({"from": ACCT[2], "to": ACCT[3], "value": "0x1"}));
    let find = |detector: &str, hash: &str, pending: bool| {
        read_alerts(&alerts_file).into_iter().find(|a| {
            a["detector"] == detector && a["tx_hash"] == hash && a.get("pending").is_some_and(|p| p == true) == pending
        })
    };
    wait_for("the pending warnings", || {
        find("known-bad", &pay, true).is_some() && find("ice-phishing", &grant, true).is_some()
    });
    let paid = find("known-bad", &pay, true).unwrap();
    assert_eq!((paid["block_number"].as_u64(), paid["block_hash"].as_str()), (Some(0), Some("")), "{paid}");
    assert_eq!(paid["labels"][0]["address"], SCAM);
    assert!(paid["reason"].as_str().unwrap().starts_with("pending: "), "{paid}");
    let ice = find("ice-phishing", &grant, true).unwrap();
    assert_eq!(ice["severity"], "high");
    let spender = ice["addresses"].as_array().unwrap().iter().find(|p| p["role"] == "spender").unwrap();
    assert_eq!(spender["address"], ACCT[8]);
    assert_eq!(node.call("eth_getTransactionByHash", json!([pay]))["blockNumber"], Value::Null, "still pending");
    // Mined: each raises its block's alert too; the benign payment raised nothing either way.
    node.call("miner_start", json!([]));
    wait_for("the block alerts", || {
        find("known-bad", &pay, false).is_some() && find("ice-phishing", &grant, false).is_some()
    });
    assert!(read_alerts(&alerts_file).iter().all(|a| a["tx_hash"] != benign.as_str()));
    assert!(find("known-bad", &pay, false).unwrap()["block_number"].as_u64().unwrap() > 0);
    // Each block alert names the early warning it confirms.
    assert_eq!(find("known-bad", &pay, false).unwrap()["related"], json!([paid["id"]]));
    assert_eq!(find("ice-phishing", &grant, false).unwrap()["related"], json!([ice["id"]]));
    // Account 2 pays account 3 (dust makes no counterparty): its look-alike is bait below.
    node.send(ACCT[2], Some(ACCT[3]), ETH, "0x");
    // The fresh EOA pulls the tokens on that allowance: the drain is named while it is pending.
    node.call("miner_stop", json!([]));
    let pull = contracts.call(
        "Token",
        "transferFrom(address,address,uint256)",
        &[word_addr(ACCT[1]), word_addr(ACCT[8]), word_u(50 * ETH)],
    );
    let drain = send(&mut node, json!({"from": ACCT[8], "to": token, "data": pull, "gas": "0x500000"}));
    // Account 2 paid account 3 just before; a zero-value transferFrom to a look-alike of account 3 is
    // named as poisoning from the call alone.
    let mimic = format!("{}{}{}", &ACCT[3][..6], "7".repeat(32), &ACCT[3][38..]);
    let zero = contracts.call(
        "Token",
        "transferFrom(address,address,uint256)",
        &[word_addr(ACCT[2]), word_addr(&mimic), word_u(0)],
    );
    let poison = send(&mut node, json!({"from": ACCT[6], "to": token, "data": zero, "gas": "0x500000"}));
    wait_for("the pending drain and poisoning warnings", || {
        find("ice-phishing-drain", &drain, true).is_some() && find("address-poisoning", &poison, true).is_some()
    });
    let poisoning = find("address-poisoning", &poison, true).unwrap();
    let roles: Vec<(&str, &str)> = poisoning["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["role"].as_str().unwrap(), p["address"].as_str().unwrap()))
        .collect();
    assert_eq!(roles, [("victim", ACCT[2]), ("poisoner", mimic.as_str()), ("impersonated", ACCT[3])]);
    let warned = find("ice-phishing-drain", &drain, true).unwrap();
    assert_eq!(warned["severity"], "critical");
    assert_eq!(warned["related"][0], find("ice-phishing", &grant, false).unwrap()["id"], "{warned}");
    node.call("miner_start", json!([]));
    wait_for("the drain's and the poisoning's block alerts", || {
        find("ice-phishing-drain", &drain, false).is_some() && find("address-poisoning", &poison, false).is_some()
    });
    let drained = find("ice-phishing-drain", &drain, false).unwrap();
    assert!(drained["related"].as_array().unwrap().contains(&warned["id"]), "{drained}");
    assert_eq!(find("address-poisoning", &poison, false).unwrap()["related"], json!([poisoning["id"]]));
    let summary = stop(monitor);
    let feed = &summary["feeds"][0];
    assert!(feed["pending_announced"].as_u64().unwrap() >= 5, "{summary}");
    assert!(feed["pending_delivered"].as_u64().unwrap() >= 5, "{summary}");
    // ganache announces hashes, whichever form is asked for: every one fetched, in
    // at most as many requests as there were announcements.
    let fetches = feed["pending_fetches"].as_u64().unwrap();
    assert!((1..=feed["pending_announced"].as_u64().unwrap()).contains(&fetches), "{summary}");
    assert_eq!(summary["chains"]["1337"]["pending_alerts"], 4, "{summary}");
    assert_eq!(summary["chains"]["1337"]["pending_confirmed"], 4, "{summary}");
    let _ = std::fs::remove_dir_all(&dir);
}
