//! Real mail servers on loopback for one test: Dovecot (IMAP, STARTTLS
//! required, and the SASL service Postfix asks) and Postfix (an MX port
//! that takes mail for example.test from anyone, as a receiving server
//! does, and a submission port that requires STARTTLS and a login), both
//! delivering to Maildirs in a temp dir, with a CA and a certificate made
//! for the test. Stopped when dropped.
//!
//! Postfix, not OpenSMTPD: Debian 12's OpenSMTPD 6.8.0p2 fails every TLS
//! handshake under OpenSSL 3 ("SSL routines::EVP lib", upstream issues
//! 1171 and 1239), so STARTTLS submission cannot be tested with it.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const PASSWORD: &str = "correct horse battery staple";
pub const USERS: [&str; 4] = ["bot", "owner", "alice", "mallory"];

pub struct MailServers {
    dovecot: Child,
    postfix: Child,
    pub imap_port: u16,
    pub mx_port: u16,
    pub submission_port: u16,
    pub dir: tempfile::TempDir,
    /// How long the two took to accept connections.
    pub started_in: Duration,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run(command: &mut Command) {
    let output = command
        .output()
        .unwrap_or_else(|err| panic!("{command:?}: {err}"));
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

impl MailServers {
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("pmail")
            .tempdir_in("/tmp")
            .unwrap();
        let root = dir.path().to_owned();
        // Dovecot's and Postfix's own users walk into it.
        run(Command::new("chmod").arg("755").arg(&root));
        certificates(&root);
        let mail = root.join("mail");
        std::fs::create_dir_all(&mail).unwrap();
        run(Command::new("chown").args(["65534:65534"]).arg(&mail));
        let users: String = USERS
            .iter()
            .map(|u| format!("{u}@example.test:{{PLAIN}}{PASSWORD}::::::\n"))
            .collect();
        std::fs::write(root.join("users"), users).unwrap();
        let (imap_port, mx_port, submission_port) = (free_port(), free_port(), free_port());
        let started = Instant::now();
        let dovecot = start_dovecot(&root, imap_port);
        wait_for_port(imap_port, "dovecot");
        let postfix = start_postfix(&root, mx_port, submission_port);
        wait_for_port(submission_port, "postfix");
        wait_for_port(mx_port, "postfix");
        Self {
            dovecot,
            postfix,
            imap_port,
            mx_port,
            submission_port,
            started_in: started.elapsed(),
            dir,
        }
    }

    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn maildir(&self, user: &str) -> PathBuf {
        self.dir
            .path()
            .join("mail")
            .join(format!("{user}@example.test"))
    }

    /// Every message in a user's Maildir: (file name, contents).
    pub fn messages(&self, user: &str) -> Vec<(String, Vec<u8>)> {
        let mut all = Vec::new();
        for sub in ["new", "cur"] {
            let Ok(entries) = std::fs::read_dir(self.maildir(user).join(sub)) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                all.push((
                    format!("{sub}/{name}"),
                    std::fs::read(entry.path()).unwrap(),
                ));
            }
        }
        all
    }

    /// Hands `message` to the MX port, as another server would.
    pub fn deliver(&self, from: &str, to: &str, message: &str) {
        let stream = TcpStream::connect(("127.0.0.1", self.mx_port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut writer = stream;
        let mut expect = |line: Option<&str>, code: &str| {
            if let Some(line) = line {
                writer.write_all(format!("{line}\r\n").as_bytes()).unwrap();
            }
            loop {
                let mut reply = String::new();
                reader.read_line(&mut reply).unwrap();
                assert!(reply.starts_with(code), "{line:?}: {reply}");
                if reply.as_bytes().get(3) != Some(&b'-') {
                    break;
                }
            }
        };
        expect(None, "220");
        expect(Some("EHLO sender.example.test"), "250");
        expect(Some(&format!("MAIL FROM:<{from}>")), "250");
        expect(Some(&format!("RCPT TO:<{to}>")), "250");
        expect(Some("DATA"), "354");
        let body = message.replace("\r\n", "\n").replace('\n', "\r\n");
        expect(Some(&format!("{body}\r\n.")), "250");
        expect(Some("QUIT"), "221");
    }
}

impl Drop for MailServers {
    fn drop(&mut self) {
        for child in [&mut self.postfix, &mut self.dovecot] {
            // Each leads its own process group: the whole group goes, and
            // is killed outright if it has not gone after a while.
            let group = format!("-{}", child.id());
            let _ = Command::new("kill")
                .args(["-s", "TERM", "--", &group])
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = Command::new("kill")
                .args(["-s", "KILL", "--", &group])
                .stderr(Stdio::null())
                .status();
            let _ = child.wait();
        }
    }
}

fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} never listened on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A CA, and a certificate for 127.0.0.1 and localhost that it signed
/// (ECDSA: quick to make).
fn certificates(root: &Path) {
    let file = |name: &str| root.join(name);
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(Command::new("openssl")
        .args(["req", "-x509", "-days", "2", "-subj", "/CN=Pincer test CA"])
        .args(ec)
        .arg("-keyout")
        .arg(file("ca.key"))
        .arg("-out")
        .arg(file("ca.pem")));
    run(Command::new("openssl")
        .args(["req", "-subj", "/CN=localhost"])
        .args(ec)
        .arg("-keyout")
        .arg(file("key.pem"))
        .arg("-out")
        .arg(file("server.csr")));
    std::fs::write(
        file("ext.cnf"),
        "basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    run(Command::new("openssl")
        .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
        .arg("-in")
        .arg(file("server.csr"))
        .arg("-CA")
        .arg(file("ca.pem"))
        .arg("-CAkey")
        .arg(file("ca.key"))
        .arg("-extfile")
        .arg(file("ext.cnf"))
        .arg("-out")
        .arg(file("cert.pem")));
}

fn start_dovecot(root: &Path, port: u16) -> Child {
    let r = root.display();
    let config = format!(
        "base_dir = {r}/run\nstate_dir = {r}/state\ninstance_name = pincer-{port}\n\
         listen = 127.0.0.1\nprotocols = imap\nssl = required\n\
         ssl_cert = <{r}/cert.pem\nssl_key = <{r}/key.pem\n\
         disable_plaintext_auth = yes\nauth_mechanisms = plain\n\
         log_path = {r}/dovecot.log\nmail_location = maildir:{r}/mail/%u\n\
         passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN {r}/users\n}}\n\
         userdb {{\n  driver = static\n  args = uid=65534 gid=65534 home={r}/mail/%u\n}}\n\
         service imap-login {{\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n\
           inet_listener imaps {{\n    port = 0\n  }}\n}}\n\
         service auth {{\n  unix_listener auth-postfix {{\n    mode = 0666\n  }}\n}}\n"
    );
    std::fs::write(root.join("dovecot.conf"), config).unwrap();
    let mut command = Command::new("dovecot");
    command
        .arg("-F")
        .arg("-c")
        .arg(root.join("dovecot.conf"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(root.join("dovecot.err")).unwrap())
        .process_group(0);
    command.spawn().expect(
        "dovecot is needed for this test (Debian package dovecot-imapd; .ci/run installs it)",
    )
}

fn start_postfix(root: &Path, mx: u16, submission: u16) -> Child {
    let r = root.display();
    let conf = root.join("postfix");
    std::fs::create_dir_all(conf.join("queue")).unwrap();
    std::fs::write(
        conf.join("main.cf"),
        format!(
            "compatibility_level = 3.6\nqueue_directory = {r}/postfix/queue\n\
             data_directory = {r}/postfix/data\nmail_owner = postfix\nsetgid_group = postdrop\n\
             myhostname = mx.example.test\nmydomain = example.test\nmyorigin = example.test\n\
             mydestination =\ninet_interfaces = 127.0.0.1\ninet_protocols = ipv4\n\
             maillog_file = /dev/stdout\nalias_maps =\nalias_database =\nlocal_recipient_maps =\n\
             mynetworks = 127.0.0.0/8\nsmtp_dns_support_level = disabled\n\
             virtual_mailbox_domains = example.test\nvirtual_mailbox_base = {r}/mail\n\
             virtual_mailbox_maps = texthash:{r}/postfix/vmailbox\n\
             virtual_uid_maps = static:65534\nvirtual_gid_maps = static:65534\nvirtual_minimum_uid = 100\n\
             smtpd_tls_cert_file = {r}/cert.pem\nsmtpd_tls_key_file = {r}/key.pem\n\
             smtpd_sasl_type = dovecot\nsmtpd_sasl_path = {r}/run/auth-postfix\n\
             smtpd_recipient_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination\n"
        ),
    )
    .unwrap();
    let services = [
        "pickup unix n - n 60 1 pickup",
        "cleanup unix n - n - 0 cleanup",
        "qmgr unix n - n 300 1 qmgr",
        "tlsmgr unix - - n 1000? 1 tlsmgr",
        "rewrite unix - - n - - trivial-rewrite",
        "bounce unix - - n - 0 bounce",
        "defer unix - - n - 0 bounce",
        "trace unix - - n - 0 bounce",
        "verify unix - - n - 1 verify",
        "flush unix n - n 1000? 0 flush",
        "proxymap unix - - n - - proxymap",
        "smtp unix - - n - - smtp",
        "relay unix - - n - - smtp",
        "showq unix n - n - - showq",
        "error unix - - n - - error",
        "retry unix - - n - - error",
        "discard unix - - n - - discard",
        "virtual unix - n n - - virtual",
        "anvil unix - - n - 1 anvil",
        "scache unix - - n - 1 scache",
        "postlog unix-dgram n - n - 1 postlogd",
    ];
    std::fs::write(
        conf.join("master.cf"),
        format!(
            "127.0.0.1:{mx} inet n - n - - smtpd\n\
             127.0.0.1:{submission} inet n - n - - smtpd -o smtpd_tls_security_level=encrypt \
             -o smtpd_sasl_auth_enable=yes -o smtpd_tls_auth_only=yes \
             -o smtpd_client_restrictions=permit_sasl_authenticated,reject\n{}\n",
            services.join("\n")
        ),
    )
    .unwrap();
    let vmailbox: String = USERS
        .iter()
        .map(|u| format!("{u}@example.test {u}@example.test/\n"))
        .collect();
    std::fs::write(conf.join("vmailbox"), vmailbox).unwrap();
    // Creates the queue's folders with Postfix's owners and modes.
    run(Command::new("postfix").arg("-c").arg(&conf).arg("check"));
    Command::new("/usr/lib/postfix/sbin/master")
        .arg("-c")
        .arg(&conf)
        .arg("-d")
        .stdout(std::fs::File::create(root.join("postfix.log")).unwrap())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("postfix is needed for this test (Debian package postfix; .ci/run installs it)")
}
