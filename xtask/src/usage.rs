//! The verbs of `cargo xtask`: their usage and help, and the parsing of
//! their arguments. Everything is parsed before any verb runs (before the
//! repository is even opened), so a wrong invocation is a `UsageError`: the
//! verb's usage on stderr under one `error: …` line, and exit 2, never a
//! failure of the task itself.

/// A flag a verb takes.
pub(crate) struct Flag {
    /// `--name`.
    pub(crate) name: &'static str,
    /// What follows it (`REF`), for a flag that takes a value.
    pub(crate) value: Option<&'static str>,
}

/// One verb: what `help` says of it, and what it takes.
pub(crate) struct Verb {
    pub(crate) name: &'static str,
    /// Its forms, each after `cargo xtask `.
    forms: &'static [&'static str],
    /// One line, for the list of verbs.
    summary: &'static str,
    /// What it does, its arguments and flags: a few lines for `help VERB`.
    details: &'static str,
    /// What its operand is called (every verb takes at most one).
    operand: Option<&'static str>,
    flags: &'static [Flag],
}

const NO_TEST: Flag = Flag {
    name: "--no-test",
    value: None,
};

const CONTINUE: Flag = Flag {
    name: "--continue",
    value: None,
};

const ABORT: Flag = Flag {
    name: "--abort",
    value: None,
};

/// Every verb, in the order `help` lists them.
pub(crate) const VERBS: &[Verb] = &[
    Verb {
        name: "skills",
        forms: &["skills"],
        summary: "list the skills in skills/, their versions and which are applied here",
        details: "Lists every skill in skills/: its name, its version, whether it is applied on\n\
                  this branch (and at which version), and one line about it.\n",
        operand: None,
        flags: &[],
    },
    Verb {
        name: "show-skill",
        forms: &["show-skill NAME [--json]"],
        summary: "a skill's capability report, SKILL.md, files and lines, new dependencies",
        details: "Shows what applying NAME would bring: what its code was found to reach next\n\
                  to what its skill.toml declares (each finding with file:line), its SKILL.md,\n\
                  what it links and edits, the files of its crate with their line counts, and\n\
                  the dependencies it adds to the build (from Cargo.lock). Writes nothing.\n\
                  \n  --json  only the capability report, as JSON (CONTRIBUTING.md: its shape)\n",
        operand: Some("NAME"),
        flags: &[Flag {
            name: "--json",
            value: None,
        }],
    },
    Verb {
        name: "diff-skill",
        forms: &["diff-skill NAME"],
        summary: "the exact diff apply-skill would commit (nothing written)",
        details: "Prints the capability report, then the diff that applying NAME would commit\n\
                  on this branch, coloured on a terminal. Writes nothing.\n",
        operand: Some("NAME"),
        flags: &[],
    },
    Verb {
        name: "apply-skill",
        forms: &[
            "apply-skill NAME [--no-test] [--accept-undeclared]",
            "apply-skill --continue [--no-test]",
            "apply-skill --abort",
        ],
        summary: "link a skill into this fork on a review branch skill/NAME, tested",
        details: "Creates the review branch skill/NAME from this branch (one left from before\n\
                  and merged since is reused), links the skill (its dependency, its registry\n\
                  line, its .env.example block), records it, runs its test and commits. Your\n\
                  branch does not move until you merge. First it prints the capability\n\
                  report, and stops when the code reaches what skill.toml does not declare.\n\
                  \n  NAME        a skill in skills/ (`cargo xtask skills` lists them)\n\
                  \x20 --no-test   commit without running the test(s)\n\
                  \x20 --accept-undeclared\n\
                  \x20             apply although the report names undeclared findings\n\
                  \x20 --continue  finish the operation that stopped (an apply, a remove or an\n\
                  \x20             update): conflicts resolved, or a failed test fixed\n\
                  \x20 --abort     undo it: back to the branch it started from\n\
                  \nExits 3 when conflicts are left to resolve.\n",
        operand: Some("NAME"),
        flags: &[
            NO_TEST,
            CONTINUE,
            ABORT,
            Flag {
                name: "--accept-undeclared",
                value: None,
            },
        ],
    },
    Verb {
        name: "remove-skill",
        forms: &["remove-skill NAME [--no-test]"],
        summary: "take a skill out on a review branch skill/remove-NAME, then build and test",
        details: "Takes NAME out on the review branch skill/remove-NAME, keeping what you changed\n\
                  since, then builds pincer (`cargo build -p pincer`) and runs the test of every\n\
                  other applied skill before it commits. A failure stops on the branch: fix it\n\
                  and `cargo xtask apply-skill --continue`, or `--abort`.\n\
                  \n  NAME       an applied skill\n\
                  \x20 --no-test  commit without the build and the tests\n\
                  \nExits 3 when conflicts are left to resolve.\n",
        operand: Some("NAME"),
        flags: &[NO_TEST],
    },
    Verb {
        name: "update",
        forms: &[
            "update [UPSTREAM] [--ref REF] [--no-test]",
            "update --continue [--no-test]",
            "update --abort",
        ],
        summary: "merge upstream's new commits on a review branch, with a report per skill",
        details: "Merges upstream's new commits onto a review branch update/<commit> with git's\n\
                  own merge, brings the applied skills to upstream's versions and reports, per\n\
                  applied skill, what changed and whether its test still passes.\n\
                  \n  UPSTREAM    a remote's name, a path or a URL; `upstream` by default\n\
                  \x20 --ref REF   the branch (or full ref) to take; main by default\n\
                  \x20 --no-test   do not run the skills' tests\n\
                  \x20 --continue  finish an update that stopped at conflicts, once resolved\n\
                  \x20             (git add and git commit finish the merge too; --continue\n\
                  \x20             then brings the skills along)\n\
                  \x20 --abort     undo it: back to the branch it started from\n\
                  \nExits 3 when upstream's changes conflict with yours (an ordinary git merge\n\
                  is then in progress: git status lists them), 1 when a skill's test fails.\n",
        operand: Some("UPSTREAM"),
        flags: &[
            Flag {
                name: "--ref",
                value: Some("REF"),
            },
            NO_TEST,
            CONTINUE,
            ABORT,
        ],
    },
    Verb {
        name: "upstream-diff",
        forms: &["upstream-diff [UPSTREAM_REF] [--list | --pick N,M] [--offline] [--out DIR]"],
        summary: "your own commits upstream lacks, as patches to send back",
        details: "Writes your own commits that UPSTREAM_REF lacks (never skills/, .pincer/ or the\n\
                  paths in .pincer/local; never the engine's commits), each rebased onto it, as\n\
                  patches for `git am`, into .git/pincer-upstream-patches (each run replaces the\n\
                  last) or DIR.\n\
                  \n  UPSTREAM_REF  upstream/main by default; a remote-tracking ref must not be\n\
                  \x20               behind its remote\n\
                  \x20 --list        list the commits, numbered; write nothing\n\
                  \x20 --pick N,M    send only these commits (numbers from --list)\n\
                  \x20 --offline     do not ask the remote whether the ref is behind\n\
                  \x20 --out DIR     where to write them (outside the working tree)\n",
        operand: Some("UPSTREAM_REF"),
        flags: &[
            Flag {
                name: "--list",
                value: None,
            },
            Flag {
                name: "--pick",
                value: Some("N,M"),
            },
            Flag {
                name: "--offline",
                value: None,
            },
            Flag {
                name: "--out",
                value: Some("DIR"),
            },
        ],
    },
    Verb {
        name: "new-skill",
        forms: &["new-skill NAME [--base REV]"],
        summary: "scaffold a skill crate in skills/NAME",
        details: "Scaffolds skills/NAME: a crate, pincer-skill-NAME, that apply-skill links\n\
                  into pincer (Cargo.toml, src/lib.rs, host.rs, tests/NAME.rs, SKILL.md,\n\
                  skill.toml), for you to fill in and commit.\n\
                  \n  --base REV  also take what changed since REV (files added and modified,\n\
                  \x20            new .env.example variables) as the skill's files to merge\n",
        operand: Some("NAME"),
        flags: &[Flag {
            name: "--base",
            value: Some("REV"),
        }],
    },
    Verb {
        name: "bench",
        forms: &[
            "bench spawn|egress|e2e|flood|staging|skills [--runs N]",
            "bench tokens",
        ],
        summary: "benchmarks, as ratios against a baseline measured in the same run",
        details: "Runs one benchmark; each prints ratios against a baseline measured in the\n\
                  same run, never absolute thresholds.\n\
                  \n  spawn     a trivial invocation's container round trip, against `docker run`\n\
                  \x20 egress    a request through the egress proxy, against one sent directly\n\
                  \x20 e2e       a message's whole path, against the bare container round trip\n\
                  \x20 flood     main's reply while another group floods its host socket\n\
                  \x20 staging   a staged grant's copy and comparison, against `cp -a`\n\
                  \x20 skills    apply-skill on a fork at the skill's base and 500 commits away\n\
                  \x20 tokens    the share of model input that prompt caching serves from cache\n\
                  \x20 --runs N  how many runs (each benchmark has its default)\n",
        operand: Some("BENCH"),
        flags: &[Flag {
            name: "--runs",
            value: Some("N"),
        }],
    },
    Verb {
        name: "help",
        forms: &["help [VERB]"],
        summary: "this list, or one verb's usage (as `VERB --help` does)",
        details: "Without VERB, lists the verbs; with it, says what VERB does and takes.\n",
        operand: Some("VERB"),
        flags: &[],
    },
];

impl Verb {
    /// Its `usage:` lines.
    fn usage(&self) -> String {
        let forms: Vec<String> = self
            .forms
            .iter()
            .map(|form| format!("cargo xtask {form}"))
            .collect();
        format!("usage: {}\n", forms.join("\n       "))
    }

    /// What `help VERB` prints.
    pub(crate) fn help(&self) -> String {
        format!("{}\n{}", self.usage(), self.details)
    }

    /// A wrong invocation of this verb.
    pub(crate) fn wrong(&'static self, message: impl Into<String>) -> UsageError {
        UsageError {
            message: message.into(),
            usage: self.help(),
        }
    }
}

/// The verb called `name`.
fn find(name: &str) -> Option<&'static Verb> {
    VERBS.iter().find(|verb| verb.name == name)
}

/// What `help` prints: every verb, one line each.
pub(crate) fn overview() -> String {
    let mut text = String::from(
        "usage: cargo xtask VERB [ARGUMENTS]\n\
         `cargo xtask help VERB` (or `VERB --help`) says what one verb does and takes.\n\n",
    );
    for verb in VERBS {
        text.push_str(&format!("  {:<15} {}\n", verb.name, verb.summary));
    }
    text.push_str(
        "\nExit codes: 0 done, 1 failed, 2 a wrong invocation, 3 conflicts to resolve.\n",
    );
    text
}

/// A wrong invocation: what was wrong, and the usage to print under it.
#[derive(Debug)]
pub(crate) struct UsageError {
    message: String,
    usage: String,
}

impl UsageError {
    /// What goes to stderr.
    pub(crate) fn report(&self) -> String {
        format!("error: {}\n\n{}", self.message, self.usage)
    }
}

/// A verb's arguments, checked against what it takes.
pub(crate) struct Args<'a> {
    pub(crate) verb: &'static Verb,
    operands: Vec<&'a str>,
    flags: Vec<(&'static str, Option<&'a str>)>,
}

impl<'a> Args<'a> {
    /// Whether `flag` was given.
    pub(crate) fn has(&self, flag: &str) -> bool {
        self.flags.iter().any(|(name, _)| *name == flag)
    }

    /// The value given with `flag`.
    pub(crate) fn value(&self, flag: &str) -> Option<&'a str> {
        self.flags
            .iter()
            .find(|(name, _)| *name == flag)
            .and_then(|(_, value)| *value)
    }

    /// The one operand the verb needs.
    pub(crate) fn operand(&self) -> Result<&'a str, UsageError> {
        let what = self.verb.operand.unwrap_or("an argument");
        match self.operands.as_slice() {
            [one] => Ok(one),
            [] => Err(self.verb.wrong(format!("{} needs {what}", self.verb.name))),
            [_, extra, ..] => Err(self
                .verb
                .wrong(format!("unexpected argument {extra:?}: one {what} only"))),
        }
    }

    /// The operand the verb may take.
    pub(crate) fn optional_operand(&self) -> Result<Option<&'a str>, UsageError> {
        match self.operands.as_slice() {
            [] => Ok(None),
            _ => self.operand().map(Some),
        }
    }

    /// None of the operands (where the verb, or this form of it, takes none).
    pub(crate) fn no_operand(&self) -> Result<(), UsageError> {
        match self.operands.first() {
            None => Ok(()),
            Some(extra) => Err(self.verb.wrong(format!("unexpected argument {extra:?}"))),
        }
    }
}

/// What the command line asks for.
pub(crate) enum Invocation<'a> {
    /// Help to print on stdout.
    Help(String),
    /// A verb to run.
    Run(Args<'a>),
}

/// Reads the command line (without the program's name).
pub(crate) fn invocation<'a>(words: &[&'a str]) -> Result<Invocation<'a>, UsageError> {
    let overview_error = |message: String| UsageError {
        message,
        usage: overview(),
    };
    let (first, rest) = match words {
        [] => return Err(overview_error("no verb given".into())),
        [first, rest @ ..] => (*first, rest),
    };
    if matches!(first, "help" | "--help" | "-h") && rest.is_empty() {
        return Ok(Invocation::Help(overview()));
    }
    let verb = find(first).ok_or_else(|| overview_error(format!("unknown verb {first:?}")))?;
    if rest.iter().any(|w| matches!(*w, "--help" | "-h")) {
        return Ok(Invocation::Help(verb.help()));
    }
    let args = parse(verb, rest)?;
    if verb.name != "help" {
        return Ok(Invocation::Run(args));
    }
    let asked = args.operand()?;
    let about = find(asked).ok_or_else(|| verb.wrong(format!("unknown verb {asked:?}")))?;
    Ok(Invocation::Help(about.help()))
}

/// Sorts `words` into operands and the verb's flags (`--flag VALUE` or
/// `--flag=VALUE`); refuses a flag the verb does not take, one given twice,
/// a value missing or given to a flag that takes none.
fn parse<'a>(verb: &'static Verb, words: &[&'a str]) -> Result<Args<'a>, UsageError> {
    let mut args = Args {
        verb,
        operands: Vec::new(),
        flags: Vec::new(),
    };
    let mut words = words.iter();
    while let Some(&word) = words.next() {
        if !word.starts_with('-') || word == "-" {
            args.operands.push(word);
            continue;
        }
        let (name, inline) = match word.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (word, None),
        };
        let flag = verb
            .flags
            .iter()
            .find(|flag| flag.name == name)
            .ok_or_else(|| verb.wrong(format!("{} takes no flag {name}", verb.name)))?;
        if args.has(flag.name) {
            return Err(verb.wrong(format!("{name} is given twice")));
        }
        let value = match (flag.value, inline) {
            (None, None) => None,
            (None, Some(_)) => return Err(verb.wrong(format!("{name} takes no value"))),
            (Some(what), Some("")) => return Err(verb.wrong(format!("{name} needs {what}"))),
            (Some(_), Some(value)) => Some(value),
            (Some(what), None) => match words.next() {
                Some(value) if !value.starts_with('-') => Some(*value),
                Some(other) => {
                    return Err(verb.wrong(format!("{name} needs {what}, not the flag {other}")));
                }
                None => return Err(verb.wrong(format!("{name} needs {what}"))),
            },
        };
        args.flags.push((flag.name, value));
    }
    Ok(args)
}
