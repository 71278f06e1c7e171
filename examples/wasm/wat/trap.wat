;; A Proxy-Wasm filter that traps (`unreachable`) in one callback, chosen by the first
;; byte of the plugin configuration, for requests whose path starts with `/crash`:
;;   c = proxy_on_context_create, h = proxy_on_request_headers, b = proxy_on_request_body,
;;   r = proxy_on_response_headers, s = proxy_on_response_body, l = proxy_on_log,
;;   d = proxy_on_done, x = proxy_on_delete, u = calls an unimplemented host function
;;   (proxy_http_call) in proxy_on_request_headers.
;; Every other request goes through untouched; `x-trap-seen: <callback letter>` is added
;; to responses so a test can tell the filter ran.
(module
  (import "env" "proxy_get_property" (func $get_property (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_buffer_bytes" (func $get_buffer (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_replace_header_map_value" (func $replace_header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_http_call" (func $http_call (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 16) "request\00path")
  (data (i32.const 32) "x-trap-seen")
  ;; 48: the configured letter
  (global $heap (mut i32) (i32.const 65536))
  (global $which (mut i32) (i32.const 0))
  (func (export "proxy_on_memory_allocate") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.and (i32.add (i32.add (global.get $heap) (local.get $n)) (i32.const 7)) (i32.const -8)))
    (local.get $p))
  ;; Traps when this callback is the configured one and the path starts with "/crash".
  (func $maybe_trap (param $letter i32)
    (local $p i32)
    (global.set $heap (i32.const 65536))
    (if (i32.ne (local.get $letter) (global.get $which)) (then (return)))
    (if (call $get_property (i32.const 16) (i32.const 12) (i32.const 200) (i32.const 204)) (then (return)))
    (if (i32.lt_u (i32.load (i32.const 204)) (i32.const 6)) (then (return)))
    (local.set $p (i32.load (i32.const 200)))
    ;; "/cra" and "sh"
    (if (i32.and (i32.eq (i32.load (local.get $p)) (i32.const 0x6172632f))
                 (i32.eq (i32.load16_u (i32.add (local.get $p) (i32.const 4))) (i32.const 0x6873)))
      (then
        (if (i32.eq (local.get $letter) (i32.const 0x75))
          (then (drop (call $http_call (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
                                       (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 200))))
          (else unreachable)))))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_configure") (param $ctx i32) (param $size i32) (result i32)
    (if (i32.eqz (local.get $size)) (then (return (i32.const 0))))
    (if (call $get_buffer (i32.const 7) (i32.const 0) (i32.const 1) (i32.const 200) (i32.const 204))
      (then (return (i32.const 0))))
    (global.set $which (i32.load8_u (i32.load (i32.const 200))))
    (i32.store8 (i32.const 48) (global.get $which))
    (i32.const 1))
  (func (export "proxy_on_context_create") (param $ctx i32) (param $parent i32)
    (if (local.get $parent) (then (call $maybe_trap (i32.const 0x63)))))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (call $maybe_trap (i32.const 0x68))
    (call $maybe_trap (i32.const 0x75))
    (i32.const 0))
  (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32)
    (call $maybe_trap (i32.const 0x62)) (i32.const 0))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (call $maybe_trap (i32.const 0x72))
    (drop (call $replace_header (i32.const 2) (i32.const 32) (i32.const 11) (i32.const 48) (i32.const 1)))
    (i32.const 0))
  (func (export "proxy_on_response_body") (param i32 i32 i32) (result i32)
    (call $maybe_trap (i32.const 0x73)) (i32.const 0))
  (func (export "proxy_on_done") (param i32) (result i32)
    (call $maybe_trap (i32.const 0x64)) (i32.const 1))
  (func (export "proxy_on_log") (param i32)
    (call $maybe_trap (i32.const 0x6c)))
  (func (export "proxy_on_delete") (param i32)
    (call $maybe_trap (i32.const 0x78)))
)
