//! Every UI string in Korean and English, in one table. Korean is the default; English is
//! chosen when the browser prefers it (`Accept-Language`).

/// A UI language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// 한국어 (the default).
    Ko,
    /// English.
    En,
}

impl Lang {
    /// The `lang` attribute value.
    #[must_use]
    pub const fn code(self) -> &'static str {
        match self {
            Lang::Ko => "ko",
            Lang::En => "en",
        }
    }

    /// Picks the language from an `Accept-Language` header: English when English is
    /// preferred over Korean, Korean otherwise (also when the header is absent or odd).
    #[must_use]
    pub fn from_accept_language(header: Option<&str>) -> Lang {
        let Some(header) = header else {
            return Lang::Ko;
        };
        let mut best_ko = -1.0_f32;
        let mut best_en = -1.0_f32;
        for (i, part) in header.split(',').take(32).enumerate() {
            let mut pieces = part.trim().split(';');
            let tag = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = pieces
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            // Earlier entries win ties, as browsers list them in order of preference.
            #[allow(clippy::cast_precision_loss)]
            let score = q - (i as f32) * 1e-4;
            let primary = tag.split('-').next().unwrap_or("");
            match primary {
                "ko" => best_ko = best_ko.max(score),
                "en" => best_en = best_en.max(score),
                _ => {}
            }
        }
        if best_en > best_ko {
            Lang::En
        } else {
            Lang::Ko
        }
    }
}

/// (key, Korean, English).
const STRINGS: &[(&str, &str, &str)] = &[
    (
        "app.title",
        "해태 보안관제센터",
        "haetae Security Control Center",
    ),
    ("nav.dashboard", "대시보드", "Dashboard"),
    ("nav.analysis", "분석", "Analysis"),
    ("analysis.by", "묶음 기준", "Group by"),
    ("col.source_ip", "출발지 IP", "Source IP"),
    ("analysis.range", "기간", "Period"),
    ("analysis.range_1h", "최근 1시간", "Last hour"),
    ("analysis.range_24h", "최근 24시간", "Last 24 hours"),
    ("analysis.range_7d", "최근 7일", "Last 7 days"),
    ("analysis.range_30d", "최근 30일", "Last 30 days"),
    ("analysis.any", "전체", "Any"),
    ("analysis.failure", "차단", "Blocked"),
    ("analysis.success", "성공", "Success"),
    ("analysis.unknown", "기록", "Recorded"),
    (
        "analysis.chart",
        "시간대별 건수 (상위 5개)",
        "Events over time (top 5)",
    ),
    ("analysis.bucket", "구간", "bucket"),
    ("analysis.value", "값", "Value"),
    ("analysis.first", "처음", "First"),
    ("analysis.last", "마지막", "Last"),
    ("analysis.users", "사용자 (건수)", "Users (events)"),
    ("analysis.json", "JSON으로 보기", "As JSON"),
    (
        "analysis.preset_restricted",
        "제한 단말 접근 24시간 모니터링",
        "Restricted devices, last 24 hours",
    ),
    (
        "analysis.preset_blocked_users",
        "차단된 사용자 24시간",
        "Blocked users, 24 hours",
    ),
    (
        "analysis.preset_blocked_ips",
        "차단된 IP 7일",
        "Blocked addresses, 7 days",
    ),
    (
        "analysis.preset_filters",
        "필터별 차단 24시간",
        "Blocks by filter, 24 hours",
    ),
    (
        "analysis.preset_actions",
        "행위별 1시간",
        "Actions, last hour",
    ),
    ("nav.services", "서비스", "Services"),
    ("nav.filters", "필터", "Filters"),
    ("nav.matrix", "매핑 매트릭스", "Mapping matrix"),
    (
        "nav.security_check",
        "보안점검 매트릭스",
        "Security check matrix",
    ),
    ("nav.lists", "목록", "Lists"),
    ("nav.wasm", "Wasm 필터 모듈", "Wasm modules"),
    ("wasm.size", "크기(바이트)", "Size (bytes)"),
    ("wasm.signature", "서명", "Signature"),
    ("wasm.signed_by", "서명 확인됨, 키", "Signed, key"),
    (
        "wasm.signed_unchecked",
        "서명 있음(신뢰 키 미설정)",
        "Signed (no trusted keys set)",
    ),
    ("wasm.unsigned", "서명 없음", "Unsigned"),
    (
        "wasm.none",
        "저장된 모듈이 없습니다.",
        "No modules stored yet.",
    ),
    ("wasm.upload", "모듈 올리기", "Upload a module"),
    ("wasm.file", ".wasm 파일", ".wasm file"),
    (
        "wasm.signature_hint",
        "파일 바이트에 대한 Ed25519 서명, 16진수 128자",
        "Ed25519 signature of the file bytes, 128 hex digits",
    ),
    (
        "wasm.unsigned_ok",
        "신뢰 키가 설정되지 않아 서명 없는 모듈도 받습니다([wasm] trusted_keys).",
        "No trusted keys are configured: unsigned modules are accepted ([wasm] trusted_keys).",
    ),
    (
        "wasm.signed_only",
        "신뢰 키로 서명된 모듈만 받습니다. 키 ID:",
        "Only modules signed by a trusted key are accepted. Key ids:",
    ),
    (
        "wasm.how_to_use",
        "필터(kind = wasm)에서 이름과 버전으로 지정하고 정책을 게시하면 모든 게이트웨이에 배포됩니다:",
        "Name a module in a filter (kind = wasm) and publish the policy to deploy it to every gateway:",
    ),
    ("nav.policy", "정책 버전", "Policy versions"),
    ("nav.events", "이벤트", "Events"),
    ("nav.alerts", "경보", "Alerts"),
    ("nav.audit", "감사 로그", "Audit log"),
    ("nav.users", "사용자", "Users"),
    ("nav.remote", "원격지원", "Remote support"),
    ("remote.issue", "접속 번호 발급", "Issue a code"),
    ("remote.code", "접속 번호", "Code"),
    ("remote.sas", "확인 번호", "Check number"),
    ("remote.sas_ok", "일치함", "Matches"),
    ("remote.sas_bad", "다름 (중단)", "Differs (abort)"),
    ("remote.end", "세션 종료", "End session"),
    ("remote.chat", "채팅", "Chat"),
    ("remote.send", "보내기", "Send"),
    ("remote.log", "세션 기록", "Session log"),
    ("remote.grade", "등급", "Grade"),
    (
        "remote.allow_from",
        "로그인 허용 주소 (CIDR, 쉼표로 구분; 비우면 모두)",
        "Login networks (CIDR, comma-separated; empty = anywhere)",
    ),
    (
        "remote.agents",
        "상담원 등급과 허용 주소",
        "Agent grades and networks",
    ),
    (
        "remote.history",
        "지원 세션 기록",
        "Support session history",
    ),
    ("remote.draw", "그리기", "Draw"),
    ("remote.clear", "지우기", "Clear drawings"),
    ("remote.url", "URL 보내기", "Send a URL"),
    ("remote.control", "제어 요청", "Request control"),
    ("remote.file", "파일 보내기", "Send a file"),
    ("remote.request_file", "파일 요청", "Ask for a file"),
    ("remote.files", "파일", "Files"),
    ("remote.save", "저장", "Save"),
    ("remote.started", "시작", "Started"),
    ("remote.ended", "종료", "Ended"),
    ("remote.agent", "상담원", "Agent"),
    ("remote.records", "기록", "Records"),
    ("nav.logout", "로그아웃", "Log out"),
    ("login.title", "로그인", "Log in"),
    ("login.username", "사용자 이름", "User name"),
    ("login.password", "비밀번호", "Password"),
    ("login.submit", "로그인", "Log in"),
    (
        "login.otp",
        "인증 코드 (OTP, 설정한 경우)",
        "Authentication code (OTP, if enabled)",
    ),
    (
        "login.otp_required",
        "이 계정은 2단계 인증을 사용합니다. 인증 앱의 6자리 코드나 복구 코드를 입력하세요.",
        "This account uses a second factor: enter the 6-digit code from your authenticator app or a recovery code.",
    ),
    ("nav.account", "내 계정", "My account"),
    ("account.totp", "2단계 인증 (TOTP)", "Second factor (TOTP)"),
    ("account.totp_on", "사용 중", "On"),
    ("account.totp_off", "사용 안 함", "Off"),
    (
        "account.totp_enable",
        "2단계 인증 설정",
        "Set up the second factor",
    ),
    (
        "account.totp_scan",
        "인증 앱으로 QR 코드를 스캔하거나 아래 키를 입력한 뒤, 앱에 표시된 6자리 코드를 입력하세요.",
        "Scan the QR code with your authenticator app (or type the key below into it), then enter the 6-digit code it shows.",
    ),
    (
        "account.totp_qr",
        "인증 앱에 등록할 QR 코드",
        "QR code for your authenticator app",
    ),
    ("account.totp_confirm", "확인", "Confirm"),
    (
        "account.recovery",
        "복구 코드 (지금 한 번만 표시됩니다. 안전한 곳에 보관하세요)",
        "Recovery codes (shown only now; keep them somewhere safe)",
    ),
    (
        "account.recovery_left",
        "남은 복구 코드",
        "Recovery codes left",
    ),
    (
        "account.totp_disable",
        "2단계 인증 해제",
        "Turn off the second factor",
    ),
    ("form.code", "코드", "Code"),
    (
        "login.refused",
        "사용자 이름 또는 비밀번호가 틀렸습니다.",
        "Wrong user name or password.",
    ),
    (
        "login.locked",
        "로그인 실패가 반복되어 계정이 15분간 잠겼습니다.",
        "Too many failed logins: the account is locked for 15 minutes.",
    ),
    (
        "login.expired",
        "로그인 양식이 만료되었습니다. 다시 시도하십시오.",
        "The login form expired; please try again.",
    ),
    ("dash.events_24h", "24시간 이벤트", "Events (24 h)"),
    ("dash.blocked_24h", "24시간 차단", "Blocked (24 h)"),
    (
        "dash.gateways_online",
        "온라인 게이트웨이",
        "Gateways online",
    ),
    (
        "dash.policy_version",
        "배포된 정책 버전",
        "Published policy version",
    ),
    (
        "dash.chart",
        "분당 이벤트 (최근 1시간, 빨강: 차단)",
        "Events per minute (last hour, red: blocked)",
    ),
    ("dash.top_users", "최다 차단 사용자", "Most blocked users"),
    ("dash.top_devices", "최다 차단 단말", "Most blocked devices"),
    (
        "dash.top_filters",
        "최다 차단 필터",
        "Most blocking filters",
    ),
    (
        "dash.top_services",
        "최다 차단 서비스",
        "Most blocked services",
    ),
    (
        "dash.latest",
        "최근 이벤트 (실시간)",
        "Latest events (live)",
    ),
    ("dash.gateways", "게이트웨이", "Gateways"),
    (
        "dash.filter_problems",
        "오류·중지된 필터",
        "Filters in error or stopped",
    ),
    (
        "dash.filters_all_running",
        "모든 필터가 정상 동작 중입니다",
        "Every filter is running",
    ),
    ("col.time", "시각", "Time"),
    ("col.rule", "규칙", "Rule"),
    ("col.summary", "내용", "Summary"),
    ("col.condition", "조건", "Condition"),
    ("col.group_by", "묶음 기준", "Group by"),
    ("col.quiet", "재경보 억제(분)", "Quiet (min)"),
    ("col.notify", "알림 대상", "Notify"),
    ("col.count", "건수", "Count"),
    ("col.minutes", "기간(분)", "Minutes"),
    ("col.url", "URL", "URL"),
    ("col.address", "주소(host:port)", "Address (host:port)"),
    ("col.transport", "전송", "Transport"),
    ("col.format", "형식", "Format"),
    (
        "col.secret",
        "비밀값(HMAC 키/HEC 토큰)",
        "Secret (HMAC key / HEC token)",
    ),
    ("col.forward_events", "이벤트도 전달", "Forward events"),
    ("col.min_severity", "최소 심각도", "Min. severity"),
    ("col.delivery", "전달 현황", "Delivery"),
    ("col.ack", "확인", "Acknowledged"),
    ("col.action", "행위", "Action"),
    ("col.outcome", "결과", "Outcome"),
    ("col.user", "사용자", "User"),
    ("col.device", "단말", "Device"),
    ("col.service", "서비스", "Service"),
    ("col.filter", "필터", "Filter"),
    ("col.severity", "심각도", "Severity"),
    ("col.id", "ID", "ID"),
    ("col.name", "이름", "Name"),
    ("col.upstream", "업스트림", "Upstream"),
    ("col.match", "요청 조건", "Match"),
    ("col.kind", "종류", "Kind"),
    ("col.mode", "모드", "Mode"),
    ("col.failure", "장애 시", "On failure"),
    ("col.budget", "시간 예산(ms)", "Budget (ms)"),
    ("col.config", "설정(JSON)", "Config (JSON)"),
    ("col.entries", "항목", "Entries"),
    ("col.description", "설명", "Description"),
    ("col.version", "버전", "Version"),
    ("col.author", "작성자", "Author"),
    ("col.comment", "설명", "Comment"),
    ("col.role", "역할", "Role"),
    ("col.state", "상태", "State"),
    ("col.gateway", "게이트웨이", "Gateway"),
    ("policy.rollout", "배포 현황", "Rollout of"),
    ("policy.rollout_problems", "거부 사유", "Why refused"),
    ("policy.rollout_running", "적용됨", "Running"),
    (
        "policy.rollout_rejected",
        "거부됨 (이전 정책 유지)",
        "Refused (previous policy kept)",
    ),
    ("policy.rollout_pending", "보고 대기", "Not reported yet"),
    ("col.last_seen", "마지막 수신", "Last seen"),
    ("col.actor", "수행자", "Actor"),
    ("col.target", "대상", "Target"),
    ("col.detail", "상세", "Detail"),
    ("col.required", "필수 통제", "Required controls"),
    ("col.gaps", "미충족", "Gaps"),
    ("form.create", "추가", "Add"),
    ("form.save", "저장", "Save"),
    ("form.delete", "삭제", "Delete"),
    ("form.search", "검색", "Search"),
    ("form.path_prefix", "경로 접두사", "Path prefix"),
    ("services.new", "새 서비스", "New service"),
    ("filters.new", "새 필터", "New filter"),
    ("lists.new", "목록 추가/변경", "Add or replace a list"),
    ("lists.entries_hint", "한 줄에 하나", "one per line"),
    (
        "matrix.hint",
        "칸을 누르면 초안의 매핑이 바뀌고, 매핑된 칸의 모드(적용/모니터/끔)는 이 서비스에만 적용됩니다. 배포는 정책 버전 화면에서 합니다.",
        "Click a cell to change the mapping in the draft; a mapped cell's mode (enforce/monitor/off) applies to that service only. Publish from Policy versions.",
    ),
    ("matrix.unmapped", "—", "—"),
    ("alerts.latest", "최근 경보", "Latest alerts"),
    ("alerts.rules", "경보 규칙", "Alert rules"),
    (
        "alerts.new_rule",
        "경보 규칙 추가/변경",
        "Add or replace an alert rule",
    ),
    (
        "alerts.notifiers",
        "알림 채널 (웹훅, SIEM 전달)",
        "Notifiers (webhooks, SIEM forwarders)",
    ),
    (
        "alerts.new_notifier",
        "알림 채널 추가/변경",
        "Add or replace a notifier",
    ),
    ("alerts.ack", "확인", "Acknowledge"),
    ("alerts.none", "경보 없음", "No alerts"),
    ("matrix.mode", "모드", "Mode"),
    ("matrix.inherit", "필터 설정", "filter's"),
    (
        "check.hint",
        "서비스마다 필수 보안통제와 실제 매핑된 필터를 비교합니다. 빨간 칸은 미충족입니다.",
        "Each service's required controls against the filters mapped to it; red cells are gaps.",
    ),
    ("check.met", "충족", "met"),
    ("check.gap", "미충족", "gap"),
    ("check.monitor-only", "모니터만", "monitor only"),
    ("check.provided", "제공", "provided"),
    ("check.not-required", "", ""),
    ("check.edit", "필수 통제 지정", "Set required controls"),
    ("policy.draft", "초안", "Draft"),
    ("policy.problems", "검증 문제", "Validation problems"),
    (
        "policy.no_problems",
        "초안이 유효합니다.",
        "The draft is valid.",
    ),
    ("policy.changes", "배포 시 변경 사항", "Changes on publish"),
    ("policy.no_changes", "변경 사항 없음", "No changes"),
    ("policy.publish", "배포", "Publish"),
    ("policy.versions", "배포된 버전", "Published versions"),
    ("policy.rollback", "이 버전으로 롤백", "Roll back to this"),
    ("policy.diff", "버전 비교", "Compare versions"),
    ("policy.from", "이전", "From"),
    (
        "policy.to",
        "이후 (번호 또는 draft)",
        "To (number or draft)",
    ),
    ("events.export_csv", "CSV 내보내기", "Export CSV"),
    (
        "events.export_jsonl",
        "JSON Lines 내보내기",
        "Export JSON Lines",
    ),
    (
        "events.none",
        "해당 이벤트가 없습니다.",
        "No matching events.",
    ),
    ("audit.verify", "무결성 검증", "Verify integrity"),
    ("users.new", "새 사용자", "New user"),
    ("users.tokens", "API 토큰", "API tokens"),
    ("users.new_token", "새 토큰", "New token"),
    (
        "forbidden",
        "이 화면을 볼 권한이 없습니다.",
        "Your role may not see this page.",
    ),
    ("none", "없음", "none"),
    ("online", "온라인", "online"),
    ("offline", "오프라인", "offline"),
];

/// The string for `key` in `lang`; the key itself when missing (a test keeps the table
/// complete).
#[must_use]
pub fn t(lang: Lang, key: &str) -> &'static str {
    STRINGS
        .iter()
        .find(|(k, _, _)| *k == key)
        .map_or("?", |(_, ko, en)| match lang {
            Lang::Ko => ko,
            Lang::En => en,
        })
}

/// Every key (for tests).
pub fn keys() -> impl Iterator<Item = &'static str> {
    STRINGS.iter().map(|(k, _, _)| *k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn korean_is_the_default() {
        assert_eq!(Lang::from_accept_language(None), Lang::Ko);
        assert_eq!(Lang::from_accept_language(Some("fr-FR,de;q=0.8")), Lang::Ko);
        assert_eq!(
            Lang::from_accept_language(Some("ko-KR,ko;q=0.9,en-US;q=0.8")),
            Lang::Ko
        );
    }

    #[test]
    fn english_is_chosen_when_preferred_over_korean() {
        assert_eq!(Lang::from_accept_language(Some("en-US,en;q=0.9")), Lang::En);
        assert_eq!(Lang::from_accept_language(Some("en-US,ko;q=0.5")), Lang::En);
        assert_eq!(
            Lang::from_accept_language(Some("ko;q=0.1,en;q=0.9")),
            Lang::En
        );
    }

    #[test]
    fn every_key_is_unique_and_has_both_languages() {
        let mut seen = std::collections::BTreeSet::new();
        for (k, ko, en) in STRINGS {
            assert!(seen.insert(k), "duplicate key {k}");
            if !k.starts_with("check.not-required") {
                assert!(
                    !ko.is_empty() && !en.is_empty(),
                    "{k} is missing a translation"
                );
            }
        }
    }
}
