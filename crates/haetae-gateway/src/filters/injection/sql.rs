//! A libinjection-class SQL tokenizer and fingerprinter, written for haetae.
//!
//! The design follows libinjection's idea (Nick Galbreath): read the value as the tail of a
//! SQL statement the application builds — once as is (a number or bare word context),
//! once as if it followed an opening `'`, once after an opening `"` — split it into
//! typed tokens, fold the tokens that do not change what the statement does (comments in
//! the middle, arithmetic between values, unary signs, adjacent strings, multi-word
//! keywords), and judge the first five folded token types, the *fingerprint*. Text reads
//! as `n n n` or `s n n`; an injection reads as `s&sos` (`' or 'a'='a`), `1UEok`
//! (`1 union select * from`), `sc` (`admin'--`).
//!
//! Unlike libinjection, which looks fingerprints up in a generated list of thousands, the
//! judgement here is a small set of structural rules over the fingerprint and the token
//! stream (a quote closed then a boolean with a comparison, a union followed by a select,
//! a statement after `;`, ...): written from what SQL grammar allows after a closed
//! literal, so they cover fingerprints no list has seen. Each rule has a name that the
//! event reports.
//!
//! Token types (one character each, as libinjection's): `s` string, `1` number (and
//! `null`/`true`/`false`), `n` bare word, `v` variable (`@x`, `@@version`), `f` function
//! (a word before `(`), `k` keyword, `E` statement keyword (`select`, `insert`, ...), `U`
//! set operator (`union`, `except`, `intersect`), `B` clause (`order by`, `group by`,
//! `having`, `limit`), `T` procedural keyword (`exec`, `declare`, `waitfor`), `&` boolean
//! operator, `o` other operator, `c` comment, and the punctuation `(` `)` `,` `;`.

/// The most tokens read from one value (the fingerprint needs five; the stream rules a few
/// more).
const MAX_TOKENS: usize = 24;

/// Token types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Str,
    Num,
    Bare,
    Var,
    Func,
    Keyword,
    Statement,
    Union,
    Clause,
    Proc,
    Logic,
    Op,
    Comment,
    Open,
    Close,
    Comma,
    Semi,
}

impl Kind {
    /// The fingerprint character.
    #[must_use]
    pub fn code(self) -> char {
        match self {
            Kind::Str => 's',
            Kind::Num => '1',
            Kind::Bare => 'n',
            Kind::Var => 'v',
            Kind::Func => 'f',
            Kind::Keyword => 'k',
            Kind::Statement => 'E',
            Kind::Union => 'U',
            Kind::Clause => 'B',
            Kind::Proc => 'T',
            Kind::Logic => '&',
            Kind::Op => 'o',
            Kind::Comment => 'c',
            Kind::Open => '(',
            Kind::Close => ')',
            Kind::Comma => ',',
            Kind::Semi => ';',
        }
    }
}

/// One token: its type and its text (lower case for words and operators).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub kind: Kind,
    pub text: String,
    /// A string or comment that ran to the end of the value without its closing mark.
    pub open: bool,
}

/// The quote the value is assumed to follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// A number or a bare word: `... WHERE id = <value>`.
    None,
    /// `... WHERE name = '<value>`.
    Single,
    /// `... WHERE name = "<value>`.
    Double,
}

fn word_kind(w: &str) -> Kind {
    match w {
        "select" | "insert" | "update" | "delete" | "drop" | "create" | "alter" | "truncate"
        | "shutdown" | "rename" | "grant" | "revoke" | "merge" | "replace" | "handler" | "load"
        | "call" => Kind::Statement,
        "union" | "except" | "intersect" => Kind::Union,
        "having" | "limit" | "offset" | "procedure" | "fetch" => Kind::Clause,
        "exec" | "execute" | "declare" | "waitfor" | "sp_executesql" | "xp_cmdshell" | "open"
        | "cursor" | "begin" | "commit" | "rollback" | "goto" => Kind::Proc,
        "and" | "or" | "xor" | "not" => Kind::Logic,
        "like" | "rlike" | "regexp" | "is" | "in" | "between" | "div" | "mod" | "escape"
        | "glob" | "match" | "against" | "collate" | "sounds" | "similar" | "ilike" => Kind::Op,
        "null" | "true" | "false" | "unknown" => Kind::Num,
        "from" | "where" | "into" | "values" | "set" | "as" | "join" | "on" | "case" | "when"
        | "then" | "else" | "end" | "distinct" | "all" | "top" | "exists" | "asc" | "desc"
        | "table" | "database" | "outfile" | "dumpfile" | "by" | "order" | "group" | "with"
        | "if" | "elseif" | "while" | "using" | "interval" | "binary" | "char" | "varchar"
        | "nvarchar" | "varchar2" | "nchar" | "int" | "integer" | "signed" | "unsigned" | "any"
        | "some" | "delay" | "time" | "inner" | "outer" | "left" | "right" | "cross"
        | "natural" | "straight_join" | "returning" | "sysdate" | "current_user"
        | "session_user" | "system_user" | "user" | "localtime" | "current_date"
        | "current_time" | "current_timestamp" | "rownum" | "dual" | "mode" | "share" | "lock"
        | "nowait" | "for" | "use" | "index" | "force" | "ignore" | "key" => Kind::Keyword,
        _ => Kind::Bare,
    }
}

/// Words that are SQL functions an attacker calls even without knowing the schema; a bare
/// word before `(` is a function too, these are only the ones the rules trust more.
fn known_function(w: &str) -> bool {
    matches!(
        w,
        "sleep"
            | "benchmark"
            | "pg_sleep"
            | "load_file"
            | "extractvalue"
            | "updatexml"
            | "concat"
            | "concat_ws"
            | "group_concat"
            | "char"
            | "chr"
            | "nchar"
            | "ascii"
            | "ord"
            | "substring"
            | "substr"
            | "mid"
            | "left"
            | "right"
            | "hex"
            | "unhex"
            | "cast"
            | "convert"
            | "count"
            | "version"
            | "database"
            | "schema"
            | "user"
            | "current_user"
            | "system_user"
            | "session_user"
            | "db_name"
            | "if"
            | "ifnull"
            | "isnull"
            | "nullif"
            | "coalesce"
            | "length"
            | "len"
            | "md5"
            | "sha1"
            | "rand"
            | "floor"
            | "exp"
            | "abs"
            | "elt"
            | "make_set"
            | "name_const"
            | "row"
            | "randomblob"
            | "dbms_pipe.receive_message"
            | "utl_inaddr.get_host_address"
            | "utl_http.request"
            | "ctxsys.drithsx.sn"
            | "xmltype"
            | "to_char"
            | "to_number"
            | "lower"
            | "upper"
            | "instr"
            | "locate"
            | "position"
            | "strcmp"
            | "replace"
            | "reverse"
            | "lpad"
            | "rpad"
            | "space"
            | "repeat"
            | "bin"
            | "oct"
            | "conv"
            | "json_extract"
            | "json_keys"
            | "gtid_subset"
            | "polygon"
            | "multipoint"
            | "geometrycollection"
            | "linestring"
            | "exists"
            | "openrowset"
            | "opendatasource"
            | "xp_cmdshell"
            | "current_database"
            | "pg_read_file"
            | "lo_import"
            | "sqlite_version"
            | "query_to_xml"
            | "array_agg"
            | "string_agg"
            | "generate_series"
            | "select"
            | "compress"
            | "uncompress"
            | "now"
            | "pow"
            | "power"
            | "round"
            | "sin"
            | "cos"
            | "format"
            | "sqrt"
            | "ceil"
            | "ceiling"
            | "trim"
            | "ltrim"
            | "rtrim"
            | "soundex"
            | "crc32"
            | "sha2"
            | "aes_encrypt"
            | "aes_decrypt"
            | "des_encrypt"
            | "encode"
            | "decode"
            | "last_insert_id"
            | "row_count"
            | "found_rows"
            | "connection_id"
            | "uuid"
            | "inet_aton"
            | "inet_ntoa"
            | "date_format"
            | "curdate"
            | "curtime"
            | "sysdate"
            | "utc_time"
            | "from_base64"
            | "to_base64"
            | "weight_string"
            | "char_length"
            | "character_length"
            | "octet_length"
            | "bit_length"
            | "export_set"
            | "field"
            | "find_in_set"
            | "quote"
            | "unicode"
            | "is_srvrolemember"
            | "has_dbaccess"
            | "object_id"
            | "object_name"
            | "col_name"
            | "file_name"
            | "host_name"
            | "suser_name"
            | "user_name"
            | "sys_context"
            | "pg_ls_dir"
            | "lo_get"
            | "getpgusername"
            | "current_schema"
            | "current_setting"
            | "txid_current"
            | "sqlite_compileoption_used"
            | "zeroblob"
            | "unistr"
            | "cot"
            | "atan"
            | "log"
            | "ln"
            | "degrees"
            | "radians"
            | "sign"
            | "truncate"
            | "var_pop"
            | "std"
            | "stddev"
            | "avg"
            | "sum"
            | "min"
            | "max"
    )
}

/// Arithmetic that a formula in plain text uses as well: no evidence of SQL by itself.
fn math_function(w: &str) -> bool {
    matches!(
        w,
        "abs"
            | "exp"
            | "log"
            | "ln"
            | "sin"
            | "cos"
            | "pow"
            | "power"
            | "sqrt"
            | "round"
            | "floor"
            | "ceil"
            | "ceiling"
            | "rand"
            | "sign"
            | "degrees"
            | "radians"
            | "atan"
            | "cot"
            | "min"
            | "max"
            | "sum"
            | "avg"
    )
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$' || c == '.'
}

/// One unit of the text the tokenizer reads: a byte of ASCII text, or a character.
trait Unit: Copy {
    fn ch(self) -> char;
    /// [`is_word_char`] of the unit.
    fn word(self) -> bool;
    /// The text of a run of units.
    fn text(units: &[Self]) -> String;
}

impl Unit for u8 {
    fn ch(self) -> char {
        char::from(self)
    }
    fn word(self) -> bool {
        self.is_ascii_alphanumeric() || matches!(self, b'_' | b'$' | b'.')
    }
    fn text(units: &[u8]) -> String {
        // ASCII: copied as it is (valid UTF-8, nothing to replace).
        String::from_utf8(units.to_vec())
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

impl Unit for char {
    fn ch(self) -> char {
        self
    }
    fn word(self) -> bool {
        is_word_char(self)
    }
    fn text(units: &[char]) -> String {
        units.iter().collect()
    }
}

/// The text of a run of units.
fn text<U: Unit>(units: &[U]) -> String {
    U::text(units)
}

/// Splits `input` into at most [`MAX_TOKENS`] tokens, reading it as following `ctx`.
#[must_use]
pub fn tokenize(input: &str, ctx: Context) -> Vec<Token> {
    // The first 4096 characters; ASCII text is read byte by byte, without decoding it.
    if input.is_ascii() {
        let b = input.as_bytes();
        tokenize_units(&b[..b.len().min(4096)], ctx)
    } else {
        let chars: Vec<char> = input.chars().take(4096).collect();
        tokenize_units(&chars, ctx)
    }
}

fn tokenize_units<U: Unit>(chars: &[U], ctx: Context) -> Vec<Token> {
    let mut toks: Vec<Token> = Vec::new();
    let mut i = 0usize;
    // In a quote context the value starts inside a string literal.
    if let Some(q) = match ctx {
        Context::None => None,
        Context::Single => Some('\''),
        Context::Double => Some('"'),
    } {
        let (tok, next) = read_string(chars, 0, q);
        toks.push(tok);
        i = next;
    }
    let mut in_exec_comment = false;
    while i < chars.len() && toks.len() < MAX_TOKENS {
        let c = chars[i].ch();
        if c.is_whitespace() || c.is_control() || c == '\u{a0}' {
            i += 1;
            continue;
        }
        let peek = chars.get(i + 1).map(|u| u.ch());
        match c {
            '\'' | '"' => {
                let (tok, next) = read_string(chars, i + 1, c);
                toks.push(tok);
                i = next;
            }
            '`' => {
                // A quoted identifier (MySQL).
                let end = chars[i + 1..]
                    .iter()
                    .position(|x| x.ch() == '`')
                    .map_or(chars.len(), |p| i + 1 + p + 1);
                toks.push(tok(Kind::Bare, text(&chars[i..end])));
                i = end;
            }
            '[' => {
                // A bracketed identifier (SQL Server).
                let end = chars[i + 1..]
                    .iter()
                    .take(128)
                    .position(|x| x.ch() == ']')
                    .map_or(i + 1, |p| i + 1 + p + 1);
                toks.push(tok(Kind::Bare, text(&chars[i..end])));
                i = end;
            }
            '#' | '-' if c == '#' || peek == Some('-') => {
                toks.push(comment_to_eol(chars, &mut i));
            }
            '/' if peek == Some('*') => {
                if chars.get(i + 2).map(|u| u.ch()) == Some('!') {
                    // MySQL runs the inside of `/*! ... */` (optionally versioned): read it as
                    // code.
                    i += 3;
                    while i < chars.len() && chars[i].ch().is_ascii_digit() {
                        i += 1;
                    }
                    in_exec_comment = true;
                    continue;
                }
                let end = (i + 2..chars.len().saturating_sub(1))
                    .find(|&j| chars[j].ch() == '*' && chars[j + 1].ch() == '/');
                let (text_end, next, open) = match end {
                    Some(j) => (j, j + 2, false),
                    None => (chars.len(), chars.len(), true),
                };
                let mut t = tok(Kind::Comment, text(&chars[i..text_end]));
                t.open = open;
                toks.push(t);
                i = next;
            }
            '*' if peek == Some('/') && in_exec_comment => {
                in_exec_comment = false;
                i += 2;
            }
            '(' | '{' => {
                toks.push(tok(Kind::Open, "(".into()));
                i += 1;
            }
            ')' | '}' => {
                toks.push(tok(Kind::Close, ")".into()));
                i += 1;
            }
            ',' => {
                toks.push(tok(Kind::Comma, ",".into()));
                i += 1;
            }
            ';' => {
                toks.push(tok(Kind::Semi, ";".into()));
                i += 1;
            }
            '@' => {
                let mut j = i + 1;
                if chars.get(j).map(|u| u.ch()) == Some('@') {
                    j += 1;
                }
                while j < chars.len() && (is_word_char(chars[j].ch()) || chars[j].ch() == '@') {
                    j += 1;
                }
                if j - i == 1 {
                    toks.push(tok(Kind::Op, "@".into()));
                } else {
                    toks.push(tok(Kind::Var, text(&chars[i..j])));
                }
                i = j;
            }
            '0'..='9' | '.' if c != '.' || peek.is_some_and(|p| p.is_ascii_digit()) => {
                let j = read_number(chars, i);
                toks.push(tok(Kind::Num, text(&chars[i..j])));
                i = j;
            }
            c if c.is_alphabetic() || c == '_' || c == '$' => {
                let mut j = i;
                while j < chars.len() && chars[j].word() && j - i < 128 {
                    j += 1;
                }
                let word = lower_word(&chars[i..j]);
                // A string with a charset or type prefix: N'..', x'..', b'..', _utf8'..'.
                if chars.get(j).map(|u| u.ch()) == Some('\'')
                    && (word.len() == 1 || word.starts_with('_'))
                {
                    let (t, next) = read_string(chars, j + 1, '\'');
                    toks.push(t);
                    i = next;
                    continue;
                }
                let mut k = j;
                while k < chars.len() && chars[k].ch().is_whitespace() {
                    k += 1;
                }
                // `word(` is a call; `word (` only for known functions ("gpgv (to not ...").
                let call =
                    chars.get(k).map(|u| u.ch()) == Some('(') && (k == j || known_function(&word));
                let kind = if call {
                    match word_kind(&word) {
                        // `in (`, `and (`, `union (`, `values (`: the word keeps its type.
                        k @ (Kind::Logic
                        | Kind::Op
                        | Kind::Union
                        | Kind::Statement
                        | Kind::Clause
                        | Kind::Proc) => k,
                        Kind::Keyword if !known_function(&word) => Kind::Keyword,
                        _ => Kind::Func,
                    }
                } else {
                    word_kind(&word)
                };
                toks.push(tok(kind, word));
                i = j;
            }
            _ => {
                let (op, len) = read_operator(chars, i);
                let kind = if op == "||" || op == "&&" {
                    Kind::Logic
                } else {
                    Kind::Op
                };
                toks.push(tok(kind, op));
                i += len;
            }
        }
    }
    toks
}

/// A word's text in lower case (as `str::to_lowercase`).
fn lower_word<U: Unit>(units: &[U]) -> String {
    let mut word = text(units);
    if word.is_ascii() {
        word.make_ascii_lowercase();
        word
    } else {
        word.to_lowercase()
    }
}

fn tok(kind: Kind, text: String) -> Token {
    Token {
        kind,
        text,
        open: false,
    }
}

fn comment_to_eol<U: Unit>(chars: &[U], i: &mut usize) -> Token {
    let end = chars[*i..]
        .iter()
        .position(|c| c.ch() == '\n')
        .map_or(chars.len(), |p| *i + p);
    let t = tok(Kind::Comment, text(&chars[*i..end]));
    *i = end;
    t
}

/// A string literal starting at `start` (after its opening quote `q`); `''` and `\'` are
/// escaped quotes. Returns the token and the index after the closing quote.
fn read_string<U: Unit>(chars: &[U], start: usize, q: char) -> (Token, usize) {
    let mut j = start;
    while j < chars.len() {
        let c = chars[j].ch();
        if c == '\\' {
            j += 2;
            continue;
        }
        if c == q {
            if chars.get(j + 1).map(|u| u.ch()) == Some(q) {
                j += 2;
                continue;
            }
            let t = tok(Kind::Str, text(&chars[start..j]));
            return (t, j + 1);
        }
        j += 1;
    }
    let j = j.min(chars.len());
    let mut t = tok(Kind::Str, text(&chars[start.min(j)..j]));
    t.open = true;
    (t, j)
}

fn read_number<U: Unit>(chars: &[U], i: usize) -> usize {
    let mut j = i;
    if chars[i].ch() == '0'
        && matches!(
            chars.get(i + 1).map(|u| u.ch()),
            Some('x' | 'X' | 'b' | 'B')
        )
    {
        j = i + 2;
        while j < chars.len() && chars[j].ch().is_ascii_hexdigit() {
            j += 1;
        }
        return j;
    }
    while j < chars.len() && (chars[j].ch().is_ascii_digit() || chars[j].ch() == '.') {
        j += 1;
    }
    if j < chars.len()
        && matches!(chars[j].ch(), 'e' | 'E')
        && chars
            .get(j + 1)
            .map(|u| u.ch())
            .is_some_and(|c| c.is_ascii_digit() || c == '-' || c == '+')
    {
        j += 2;
        while j < chars.len() && chars[j].ch().is_ascii_digit() {
            j += 1;
        }
    }
    j.max(i + 1)
}

fn read_operator<U: Unit>(chars: &[U], i: usize) -> (String, usize) {
    const THREE: [&str; 2] = ["<=>", "!<>"];
    const TWO: [&str; 12] = [
        "<=", ">=", "<>", "!=", "||", "&&", "<<", ">>", ":=", "::", "!<", "!>",
    ];
    let take = |n: usize| -> String { text(&chars[i..(i + n).min(chars.len())]) };
    let t3 = take(3);
    if THREE.contains(&t3.as_str()) {
        return (t3, 3);
    }
    let t2 = take(2);
    if TWO.contains(&t2.as_str()) {
        return (t2, 2);
    }
    (take(1), 1)
}

fn is_value(k: Kind) -> bool {
    matches!(k, Kind::Str | Kind::Num | Kind::Bare | Kind::Var)
}

fn is_arith(op: &str) -> bool {
    matches!(
        op,
        "+" | "-" | "*" | "/" | "%" | "^" | "|" | "&" | "<<" | ">>" | "div" | "mod" | "::"
    )
}

/// Folds the token stream: multi-word keywords become one token, comments inside the
/// stream disappear (a comment at the end stays: it is how an injection silences the
/// rest), adjacent strings join, unary signs join their operand, arithmetic between values
/// becomes one value.
#[must_use]
pub fn fold(tokens: Vec<Token>) -> Vec<Token> {
    let n = tokens.len();
    let mut out: Vec<Token> = Vec::with_capacity(n);
    let mut it = tokens.into_iter().enumerate().peekable();
    while let Some((idx, t)) = it.next() {
        // Comments: only the last token may stay one.
        if t.kind == Kind::Comment && idx + 1 < n {
            continue;
        }
        if let Some(prev) = out.last_mut() {
            // Multi-word keywords.
            let merged = match (prev.text.as_str(), t.text.as_str()) {
                ("union" | "except" | "intersect", "all" | "distinct") => Some(Kind::Union),
                ("order" | "group" | "partition", "by") => Some(Kind::Clause),
                ("not", "like" | "in" | "between" | "regexp" | "rlike" | "exists" | "null")
                | ("is", "not" | "null")
                | ("sounds", "like") => Some(Kind::Op),
                ("waitfor", "delay" | "time") => Some(Kind::Proc),
                ("into", "outfile" | "dumpfile") | ("procedure", "analyse") => {
                    Some(Kind::Statement)
                }
                ("left" | "right" | "inner" | "outer" | "cross" | "natural", "join") => {
                    Some(Kind::Keyword)
                }
                _ => None,
            };
            if let Some(kind) = merged
                && prev.kind != Kind::Str
                && t.kind != Kind::Str
            {
                prev.kind = kind;
                prev.text.push(' ');
                prev.text.push_str(&t.text);
                continue;
            }
            // Adjacent strings concatenate (`'a' 'b'`).
            if prev.kind == Kind::Str && t.kind == Kind::Str {
                prev.open = t.open;
                continue;
            }
        }
        // A unary sign or negation before a value, at the start or after an operator,
        // joins the value.
        if t.kind == Kind::Op
            && matches!(t.text.as_str(), "-" | "+" | "~" | "!")
            && out.last().is_none_or(|p| {
                matches!(
                    p.kind,
                    Kind::Op | Kind::Logic | Kind::Open | Kind::Comma | Kind::Keyword
                ) || p.kind == Kind::Statement
            })
            && it
                .peek()
                .is_some_and(|(_, nx)| is_value(nx.kind) || nx.kind == Kind::Func)
        {
            continue;
        }
        // value (arith) value -> value
        if is_value(t.kind) {
            let l = out.len();
            if l >= 2 && out[l - 1].kind == Kind::Op && is_arith(&out[l - 1].text) {
                let prev_val = out[l - 2].kind;
                if is_value(prev_val) || prev_val == Kind::Close {
                    out.pop();
                    continue;
                }
            }
        }
        out.push(t);
    }
    out
}

/// The fingerprint: the type codes of the first five folded tokens.
#[must_use]
pub fn fingerprint(tokens: &[Token]) -> String {
    tokens.iter().take(5).map(|t| t.kind.code()).collect()
}

/// The verdict on one value in one context: the rule that matched and the fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlMatch {
    pub rule: &'static str,
    pub fingerprint: String,
    pub context: Context,
}

/// Whether `value` reads as SQL injection in any of the three contexts.
#[must_use]
pub fn detect(value: &str) -> Option<SqlMatch> {
    detect_from(value, tokenize(value, Context::None))
}

/// [`detect`] and [`fragments`] of one value, reading it in the bare context once for both.
#[must_use]
pub fn analyse(value: &str) -> (Option<SqlMatch>, Vec<(&'static str, u32, u8)>) {
    let bare = tokenize(value, Context::None);
    let frags = fragments_of(value, &bare);
    (detect_from(value, bare), frags)
}

/// [`detect`], given the value's tokens in the bare context.
fn detect_from(value: &str, bare: Vec<Token>) -> Option<SqlMatch> {
    let mut bare = Some(bare);
    for ctx in [Context::None, Context::Single, Context::Double] {
        // A quote context only matters when the value holds that quote.
        match ctx {
            Context::Single if !value.contains('\'') => continue,
            Context::Double if !value.contains('"') => continue,
            _ => {}
        }
        let toks = fold(match bare.take() {
            Some(t) if ctx == Context::None => t,
            _ => tokenize(value, ctx),
        });
        if let Some(rule) = judge(&toks, ctx) {
            return Some(SqlMatch {
                rule,
                fingerprint: fingerprint(&toks),
                context: ctx,
            });
        }
    }
    None
}

/// Whether `t` compares with the token after it (`next`): word operators need the
/// operand SQL gives them (`in (`, `is null`, `like '...'`), not the next word of a sentence.
fn compares(t: &Token, next: Option<&Token>) -> bool {
    if !is_comparison(t) {
        return false;
    }
    let nk = next.map(|n| n.kind);
    match t.text.as_str() {
        "in" | "not in" => nk == Some(Kind::Open),
        "is" | "is not" => nk == Some(Kind::Num),
        "like" | "not like" | "rlike" | "regexp" | "not regexp" | "sounds like" | "glob"
        | "ilike" | "similar" => matches!(
            nk,
            Some(Kind::Str | Kind::Var | Kind::Func | Kind::Open | Kind::Num)
        ),
        "between" | "not between" => matches!(nk, Some(Kind::Num | Kind::Str)),
        // `=`, `<>`, `is null`, arithmetic: any operand (`condition_at` checks that a
        // name operand does not run on into prose).
        _ => true,
    }
}

fn is_comparison(t: &Token) -> bool {
    t.kind == Kind::Op
        && matches!(
            t.text.as_str(),
            "=" | "<"
                | ">"
                | "<="
                | ">="
                | "<>"
                | "!="
                | "<=>"
                | "!<"
                | "!>"
                | "like"
                | "rlike"
                | "regexp"
                | "is"
                | "is not"
                | "is null"
                | "not like"
                | "not regexp"
                | "in"
                | "not in"
                | "between"
                | "not between"
                | "sounds like"
                | "glob"
                | "ilike"
                | "similar"
                | "-"
                | "+"
                | "*"
                | "/"
                | "%"
                | "^"
                | "|"
                | "&"
                | "div"
                | "mod"
                | "::"
                | ":="
        )
}

/// Whether the tokens from `i` read as an operand expression that a boolean operator
/// makes into a condition: a literal or name compared with something, a function call, a
/// parenthesised expression, a subquery, a variable, a literal ending the statement.
fn condition_at(toks: &[Token], i: usize) -> bool {
    let Some(t) = toks.get(i) else {
        return false;
    };
    let next = toks.get(i + 1);
    // After `value <op>`: the right operand, which must not run on into prose.
    let operand_ok = |j: usize| -> bool {
        match toks.get(j) {
            Some(x) if x.kind == Kind::Bare => toks.get(j + 1).is_none_or(|y| {
                !matches!(
                    y.kind,
                    Kind::Bare | Kind::Keyword | Kind::Statement | Kind::Num
                )
            }),
            None | Some(_) => true,
        }
    };
    match t.kind {
        Kind::Func => known_function(&t.text),
        Kind::Var => true,
        Kind::Statement => statement_shape(&toks[i..]),
        // `(1=1`, `(select`, `('a'='a`: a comparison, call or subquery soon after.
        Kind::Open => toks[i + 1..].iter().take(6).any(|t| {
            is_comparison(t) || matches!(t.kind, Kind::Func | Kind::Statement | Kind::Var)
        }),
        Kind::Logic => condition_at(toks, i + 1),
        Kind::Num | Kind::Str => match next {
            // `' or '1`: a short open literal is a truth value, a long one is prose.
            None => {
                t.kind == Kind::Num
                    || (t.open
                        && t.text.chars().count() <= 4
                        && t.text.chars().all(char::is_alphanumeric))
            }
            Some(n) => {
                (compares(n, toks.get(i + 2)) && operand_ok(i + 2))
                    || matches!(
                        n.kind,
                        Kind::Comment | Kind::Semi | Kind::Close | Kind::Logic | Kind::Clause
                    )
                    || (n.kind == Kind::Str && t.kind == Kind::Str)
            }
        },
        Kind::Bare => next.is_some_and(|n| {
            compares(n, toks.get(i + 2))
                && toks
                    .get(i + 2)
                    .is_some_and(|x| is_value(x.kind) || x.kind == Kind::Func)
                && operand_ok(i + 2)
                || n.kind == Kind::Comment
        }),
        Kind::Op => {
            compares(t, next) && next.is_some_and(|x| is_value(x.kind)) && operand_ok(i + 1)
                || (t.text == "!" || t.text == "~") && condition_at(toks, i + 1)
        }
        _ => false,
    }
}

/// The structural rules. Returns the name of the first that matches.
fn judge(toks: &[Token], ctx: Context) -> Option<&'static str> {
    if toks.is_empty() {
        return None;
    }
    let k = |i: usize| toks.get(i).map(|t| t.kind);
    // Anywhere in the stream.
    for (i, t) in toks.iter().enumerate() {
        match t.kind {
            // union [all] [(] select
            Kind::Union => {
                let mut j = i + 1;
                while k(j) == Some(Kind::Open) {
                    j += 1;
                }
                if k(j) == Some(Kind::Statement) && toks[j].text.starts_with("select") {
                    return Some("fingerprint:union-select");
                }
            }
            // ; statement
            Kind::Semi
                if statement_shape(&toks[i + 1..])
                    || (k(i + 1) == Some(Kind::Proc) && proc_shape(&toks[i + 1..]))
                    || toks.get(i + 1).is_some_and(|n| n.text == "set")
                        && matches!(k(i + 2), Some(Kind::Var | Kind::Bare)) =>
            {
                return Some("fingerprint:stacked-statement");
            }
            // `) as x from`, `1 as "a" from`: a select list's alias before FROM.
            Kind::Keyword
                if t.text == "as"
                    && i > 0
                    && (matches!(toks[i - 1].kind, Kind::Close | Kind::Num | Kind::Str)
                        || toks[i - 1].text.starts_with('`'))
                    && matches!(k(i + 1), Some(Kind::Bare | Kind::Str))
                    && toks.get(i + 2).is_some_and(|n| n.text == "from") =>
            {
                return Some("fingerprint:alias-from");
            }
            // `from users where id=1`, `from t limit`, `from information_schema.tables where`
            Kind::Keyword
                if t.text == "from"
                    && k(i + 1) == Some(Kind::Bare)
                    && toks.get(i + 2).is_some_and(|n| {
                        (n.text == "where" && condition_at(toks, i + 3))
                            || (n.kind == Kind::Clause && n.text != "procedure")
                            || n.kind == Kind::Union
                    }) =>
            {
                return Some("fingerprint:from-clause");
            }
            // `concat(0x7e,version())`: a SQL function whose arguments are SQL.
            Kind::Func
                if known_function(&t.text)
                    && !math_function(&t.text)
                    && k(i + 1) == Some(Kind::Open)
                    && toks[i + 2..].iter().take(8).any(|a| {
                        (a.kind == Kind::Func && known_function(&a.text) && !math_function(&a.text))
                            || (a.kind == Kind::Num
                                && a.text.starts_with("0x")
                                && toks.get(i + 2..).is_some_and(|r| {
                                    r.iter().take(8).any(|c| c.kind == Kind::Comma)
                                }))
                            || a.kind == Kind::Statement
                            || a.kind == Kind::Var
                    }) =>
            {
                return Some("fingerprint:nested-call");
            }
            // a subquery: `(select count(*) ...`, `in (select`, `from(select`
            Kind::Open if k(i + 1) == Some(Kind::Statement) && statement_shape(&toks[i + 1..]) => {
                return Some("fingerprint:subquery");
            }
            // exec master..xp_cmdshell, declare @x, waitfor delay '0:0:5'
            Kind::Proc if proc_shape(&toks[i..]) => {
                return Some("fingerprint:procedural");
            }
            _ => {}
        }
    }
    let first = &toks[0];
    // A quote context: the first token is the literal the value closed.
    if ctx != Context::None && first.kind == Kind::Str && !first.open {
        let second = toks.get(1)?;
        return match second.kind {
            // ' or 1=1, ' and sleep(5), ' || 'a'='a
            Kind::Logic if condition_at(toks, 2) => Some("fingerprint:quote-boolean"),
            // admin'--, admin'#: not `'--dry-run'` or `"#if 0"` (a quoted word).
            Kind::Comment if toks.len() == 2 && quote_comment(first, second, ctx) => {
                Some("fingerprint:quote-comment")
            }
            // '; ...
            Kind::Semi if toks.len() == 2 || k(2) == Some(Kind::Comment) => {
                Some("fingerprint:quote-terminate")
            }
            // ') or ('a'='a, ') union ...
            Kind::Close
                if matches!(
                    k(2),
                    Some(Kind::Logic | Kind::Comment | Kind::Semi | Kind::Union | Kind::Clause)
                ) && (k(2) != Some(Kind::Logic) || condition_at(toks, 3)) =>
            {
                Some("fingerprint:quote-close-paren")
            }
            // ' order by 1--, ' having 1=1, ' limit 1
            Kind::Clause if matches!(k(2), Some(Kind::Num | Kind::Bare | Kind::Func)) => {
                Some("fingerprint:quote-clause")
            }
            // '+sleep(5)+', '-1=1-- , '='' or'
            Kind::Op
                if (k(2) == Some(Kind::Func) && known_function(&toks[2].text))
                    || (is_comparison(second)
                        && matches!(k(2), Some(Kind::Str | Kind::Num))
                        && matches!(k(3), Some(Kind::Logic | Kind::Comment | Kind::Semi))) =>
            {
                Some("fingerprint:quote-expression")
            }
            // '=1 union..., ' in (select
            Kind::Op | Kind::Keyword
                if matches!(second.text.as_str(), "in" | "not in" | "exists")
                    && k(2) == Some(Kind::Open)
                    && k(3) == Some(Kind::Statement) =>
            {
                Some("fingerprint:quote-subquery")
            }
            // ' into outfile, ' from users--
            Kind::Statement if second.text.starts_with("into") => Some("fingerprint:quote-into"),
            _ => None,
        };
    }
    // No quote: a number or a name the application puts in the statement.
    if ctx == Context::None {
        let second = toks.get(1);
        match (first.kind, second.map(|t| t.kind)) {
            // The tail of a condition: `and 1=1`, `or name = "`, `|| (x=1`, `xor sleep(1)`.
            (Kind::Logic, Some(_))
                if first.text != "not"
                    && condition_at(toks, 1)
                    && !(k(1) == Some(Kind::Num) && k(2).is_none()) =>
            {
                return Some("fingerprint:boolean-fragment");
            }
            // 1 or 1=1, 1 and sleep(5), x and 1=1
            (Kind::Num | Kind::Bare | Kind::Close, Some(Kind::Logic)) if condition_at(toks, 2) => {
                // Words in a sentence ("rent and utilities") are not a condition; a bare
                // word needs a comparison or a call after the boolean.
                if first.kind == Kind::Bare
                    && !matches!(k(2), Some(Kind::Num | Kind::Func | Kind::Open | Kind::Var))
                {
                    if toks.len() >= 4 && is_comparison(&toks[3]) && k(2) == Some(Kind::Bare) {
                        return Some("fingerprint:boolean-condition");
                    }
                    return None;
                }
                if first.kind == Kind::Bare && k(2) == Some(Kind::Num) && k(3).is_none() {
                    return None;
                }
                return Some("fingerprint:boolean-condition");
            }
            // 1) or (1=1, 1)) union...
            (Kind::Num | Kind::Bare, Some(Kind::Close))
                if matches!(
                    k(2),
                    Some(Kind::Logic | Kind::Semi | Kind::Union | Kind::Comment)
                ) && (k(2) != Some(Kind::Logic) || condition_at(toks, 3))
                    && (k(2) != Some(Kind::Semi) || statement_shape(&toks[3..])) =>
            {
                return Some("fingerprint:close-paren");
            }
            // 1 order by 5--, 1 having 1=1, 1 procedure analyse
            (Kind::Num, Some(Kind::Clause))
                if matches!(k(2), Some(Kind::Num | Kind::Func | Kind::Bare)) =>
            {
                return Some("fingerprint:number-clause");
            }
            // 1-- , 1#: a number then a comment
            (Kind::Num, Some(Kind::Comment)) if toks.len() == 2 && first.text.len() < 12 => {
                let c = &toks[1].text;
                if c.starts_with("--") || c.starts_with('#') || c.starts_with("/*") {
                    return Some("fingerprint:number-comment");
                }
            }
            // select 1,2 / select * from / select user() / insert into / drop table
            (Kind::Statement, _) if statement_shape(toks) => {
                return Some("fingerprint:statement");
            }
            // a function call that only a query makes: sleep(5), benchmark(...)
            (Kind::Func, Some(Kind::Open))
                if matches!(
                    first.text.as_str(),
                    "sleep"
                        | "pg_sleep"
                        | "benchmark"
                        | "load_file"
                        | "extractvalue"
                        | "updatexml"
                        | "dbms_pipe.receive_message"
                        | "utl_inaddr.get_host_address"
                        | "utl_http.request"
                        | "pg_read_file"
                        | "xp_cmdshell"
                ) =>
            {
                return Some("fingerprint:attack-function");
            }
            _ => {}
        }
    }
    None
}

/// A closed literal then a comment ends the statement (`admin'--`), unless it reads as a
/// quoted option or directive (`'--dry-run'`, `"#if 0"`): an empty literal before a
/// comment glued to a word, or a comment that itself closes the quote.
fn quote_comment(lit: &Token, comment: &Token, ctx: Context) -> bool {
    let q = if ctx == Context::Double { '"' } else { '\'' };
    if comment.text.contains(q) {
        return false;
    }
    if lit.text.is_empty() {
        let rest = comment
            .text
            .trim_start_matches(['-', '#'])
            .trim_start_matches('*');
        return rest.is_empty() || rest.starts_with(char::is_whitespace);
    }
    true
}

/// `exec master..xp_cmdshell`, `exec(@q)`, `declare @x`, `waitfor delay '0:0:5'`,
/// `execute sp_executesql`: a procedural keyword with the operand only SQL gives it.
fn proc_shape(toks: &[Token]) -> bool {
    let Some(first) = toks.first() else {
        return false;
    };
    let Some(next) = toks.get(1) else {
        return false;
    };
    match first.text.as_str() {
        "exec" | "execute" => {
            matches!(next.kind, Kind::Var | Kind::Str | Kind::Proc)
                || (next.kind == Kind::Open
                    && toks
                        .get(2)
                        .is_some_and(|t| matches!(t.kind, Kind::Var | Kind::Str)))
                || next.kind == Kind::Func
                || next.text.starts_with("xp_")
                || next.text.starts_with("sp_")
                || next.text.starts_with("master.")
                || next.text.contains("..")
        }
        "declare" => next.kind == Kind::Var,
        "waitfor delay" | "waitfor time" => matches!(next.kind, Kind::Str | Kind::Num),
        "sp_executesql" | "xp_cmdshell" => true,
        _ => false,
    }
}

/// A statement keyword followed by what makes it a statement, not an English verb:
/// `select 1,2`, `select * from`, `select user()`, `select x from y`, `insert into t`,
/// `drop table t`, `delete from t`, `update t set`.
fn statement_shape(toks: &[Token]) -> bool {
    let Some(first) = toks.first() else {
        return false;
    };
    let first = first.text.as_str();
    let t1 = toks.get(1);
    let t2 = toks.get(2);
    let kind = |t: Option<&Token>| t.map(|t| t.kind);
    match first {
        "select" => match kind(t1) {
            Some(Kind::Num | Kind::Var | Kind::Func | Kind::Str) => true,
            Some(Kind::Open) => {
                matches!(
                    kind(t2),
                    Some(Kind::Statement | Kind::Func | Kind::Num | Kind::Var | Kind::Open)
                ) || t2.is_some_and(|t| t.text == "case")
            }
            Some(Kind::Op) => t1.is_some_and(|t| t.text == "*"),
            Some(Kind::Keyword) => {
                t1.is_some_and(|t| matches!(t.text.as_str(), "distinct" | "all" | "top" | "case"))
            }
            Some(Kind::Bare) => match kind(t2) {
                Some(Kind::Comma) => true,
                Some(Kind::Keyword) => t2.is_some_and(|t| t.text == "from" || t.text == "into"),
                _ => false,
            },
            _ => false,
        },
        "insert" | "replace" => t1.is_some_and(|t| t.text == "into"),
        "delete" => t1.is_some_and(|t| t.text == "from"),
        "drop" | "create" | "alter" | "truncate" => t1.is_some_and(|t| {
            matches!(
                t.text.as_str(),
                "table" | "database" | "procedure" | "function" | "user" | "view" | "index"
            ) || t.text == "schema"
        }),
        "update" => kind(t1) == Some(Kind::Bare) && t2.is_some_and(|t| t.text == "set"),
        "shutdown" => toks.len() == 1 || kind(t1) == Some(Kind::Comment),
        _ => false,
    }
}

/// Weak evidence for the higher paranoia levels, read in the bare context: a call of a
/// SQL function by name (`ABS(`, `unhex(`), a procedural keyword opening the value
/// (`execute system`). Each item: rule, weight, lowest paranoia level.
#[must_use]
pub fn fragments(value: &str) -> Vec<(&'static str, u32, u8)> {
    fragments_of(value, &tokenize(value, Context::None))
}

/// [`fragments`], given the value's tokens in the bare context.
fn fragments_of(value: &str, toks: &[Token]) -> Vec<(&'static str, u32, u8)> {
    let mut out = Vec::new();
    if toks
        .iter()
        .any(|t| t.kind == Kind::Func && known_function(&t.text))
    {
        out.push(("sql-function-token", 4, 2));
    }
    if toks.first().is_some_and(|t| {
        t.kind == Kind::Proc && matches!(t.text.as_str(), "exec" | "execute" | "declare")
    }) && toks.len() >= 2
    {
        out.push(("sql-procedural-word", 4, 2));
    }
    if function_probe(value) {
        out.push(("sql-function-probe", 5, 1));
    }
    if literal_tautology(toks) {
        out.push(("sql-literal-tautology", 5, 1));
    }
    out
}

/// A value that is nothing but a SQL function's name and an opening parenthesis, with a
/// little punctuation between (`ABS(`, `unhex (`, `length||(`, `year]=(`): a probe for
/// where the application puts the value in its query. Text does not end in `name(`.
fn function_probe(value: &str) -> bool {
    let v = value.trim();
    let Some(body) = v.strip_suffix('(') else {
        return false;
    };
    let word = |c: char| c.is_alphanumeric() || c == '_' || c == '.';
    let body = body.trim_start_matches(|c: char| !word(c));
    let name_end = body.find(|c: char| !word(c)).unwrap_or(body.len());
    let (name, rest) = body.split_at(name_end);
    if name.is_empty() || rest.chars().count() > 6 || rest.chars().any(word) {
        return false;
    }
    // `a.b(` names (`dbms_pipe.receive_message(`) are read whole by `tokenize`.
    known_function(name) || probe_function(name)
}

/// SQL functions and function-like keywords that are English words as well: evidence only
/// in a value that is nothing else ([`function_probe`]).
fn probe_function(w: &str) -> bool {
    matches!(
        w,
        "time"
            | "date"
            | "year"
            | "month"
            | "day"
            | "hour"
            | "minute"
            | "second"
            | "week"
            | "quarter"
            | "timestamp"
            | "datediff"
            | "dateadd"
            | "date_add"
            | "date_sub"
            | "adddate"
            | "subdate"
            | "extract"
            | "localtime"
            | "localtimestamp"
            | "current_date"
            | "current_time"
            | "current_timestamp"
            | "values"
            | "default"
            | "local"
            | "insert"
            | "in"
            | "password"
            | "old_password"
            | "pi"
            | "mod"
            | "nvl"
            | "nvl2"
            | "to_date"
            | "get_lock"
            | "release_lock"
            | "charset"
            | "collation"
            | "ifnull"
    )
}

/// A comparison of two literals that is always true: `1=1`, `'a'='a'`, `2!=3`, `b,1=1`
/// (equal literals compared equal, or different ones compared unequal). Numbers and quoted
/// strings only: `price!=cost` compares names, which text does.
fn literal_tautology(toks: &[Token]) -> bool {
    toks.windows(3).any(|w| {
        let [a, op, b] = w else { return false };
        if op.kind != Kind::Op {
            return false;
        }
        let number = |t: &Token| t.kind == Kind::Num;
        // Not an unclosed literal (`1="`): that is the application's string.
        let literal = |t: &Token| number(t) || (t.kind == Kind::Str && !t.open);
        match op.text.as_str() {
            "=" | "==" | "<=>" | ">=" | "<=" => literal(a) && literal(b) && a.text == b.text,
            "!=" | "<>" => number(a) && number(b) && a.text != b.text,
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(v: &str, ctx: Context) -> String {
        fingerprint(&fold(tokenize(v, ctx)))
    }

    #[test]
    fn tokens_and_fingerprints() {
        assert_eq!(fp("' or '1'='1", Context::Single), "s&sos");
        assert_eq!(fp("1 union all select 1,2", Context::None), "1UE1,");
        assert_eq!(fp("admin'--", Context::Single), "sc");
        assert_eq!(fp("1/**/or/**/1=1", Context::None), "1&1o1");
        assert_eq!(fp("-1 or sleep(5)", Context::None), "1&f(1");
        assert_eq!(fp("1+1 and 2", Context::None), "1&1");
        assert_eq!(fp("1 /*!union*/ select", Context::None), "1UE");
        assert_eq!(fp("@@version", Context::None), "v");
        assert_eq!(fp("1 order by 3", Context::None), "1B1");
    }

    #[test]
    fn injections_are_detected() {
        for v in [
            "' or '1'='1",
            "1' OR 1=1-- ",
            "admin'--",
            "admin\"#",
            "1 UNION SELECT username, password FROM users",
            "1; DROP TABLE accounts",
            "1' AND SLEEP(5)#",
            "x' UnIoN/**/SeLeCt 1,2,3-- -",
            "1 or 1=1",
            "-1 or sleep(5)",
            "') or ('a'='a",
            "1) or (1=1",
            "1' order by 3--",
            "'; exec master..xp_cmdshell 'dir'--",
            "1; waitfor delay '0:0:5'--",
            "select * from users",
            "select user()",
            "' union select null--",
            "\" or \"\"=\"",
            "1 and ascii(substring(user(),1,1))>64",
            "'+sleep(5)+'",
        ] {
            assert!(detect(v).is_some(), "{v}: {:?}", {
                let t = fold(tokenize(v, Context::Single));
                fingerprint(&t)
            });
        }
    }

    #[test]
    fn text_is_not_sql() {
        for v in [
            "O'Brien",
            "rock 'n' roll and jazz",
            "rent and utilities",
            "Please select an account from the list",
            "I'd like to update my address; thanks",
            "1,000,000",
            "a < b and c > d",
            "Jones' and Smith's",
            "drop me a line",
            "union station",
            "it's 3 or 4 o'clock",
            "call me tomorrow",
            "tom & jerry",
            "select",
            "order by price",
            "2026-11-23",
            "--",
            "the 'best' or 'worst' case",
            "김철수",
        ] {
            assert_eq!(detect(v), None, "{v}");
        }
    }

    #[test]
    fn ascii_text_read_byte_by_byte_tokenizes_as_read_char_by_char() {
        const PIECES: [&str; 40] = [
            "'", "\"", "`", "[", "]", " ", "\t", "\n", "\x01", "/*", "/*!50000", "*/", "--", "#",
            "@", "@@", "0x1f", "0b1", "1e5", "1.5", ".5", ".", "(", ")", "{", "}", ",", ";", "<=>",
            "!<>", "||", "&&", "<", "=", "!", "\\", "OR", "Union", "select", "N'x'",
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let len = 1 + next() % 16;
            let v: String = (0..len)
                .map(|_| PIECES[usize::try_from(next() % 40).unwrap_or(0)])
                .collect();
            let chars: Vec<char> = v.chars().collect();
            for ctx in [Context::None, Context::Single, Context::Double] {
                assert_eq!(
                    tokenize_units(v.as_bytes(), ctx),
                    tokenize_units(&chars, ctx),
                    "{v:?}"
                );
            }
        }
        // Only the first 4096 characters are read either way.
        for unit in ["x", "\u{ac00}"] {
            let long = format!("'{}", unit.repeat(5000));
            let toks = tokenize(&long, Context::None);
            assert_eq!(toks[0].text.chars().count(), 4095, "{unit}");
            assert!(toks[0].open);
        }
    }

    #[test]
    fn tokenizer_survives_anything() {
        for v in [
            "'", "\"", "`", "[", "/*", "/*!", "*/", "@", "@@", "0x", "1e", "1e+", ".", "\\", "'\\",
            "N'", "_utf8'", "{", "--", "#",
        ] {
            for ctx in [Context::None, Context::Single, Context::Double] {
                let _ = fold(tokenize(v, ctx));
            }
            let _ = detect(v);
        }
    }
}
