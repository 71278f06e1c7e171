;; A Proxy-Wasm filter whose `proxy_on_request_headers` never returns: the host must cut
;; it at the filter's time budget (epoch deadline) and apply the failure policy.
;; Requests to paths not starting with `/spin` pass through.
(module
  (import "env" "proxy_get_property" (func $get_property (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 16) "request\00path")
  (global $heap (mut i32) (i32.const 65536))
  (func (export "proxy_on_memory_allocate") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.and (i32.add (i32.add (global.get $heap) (local.get $n)) (i32.const 7)) (i32.const -8)))
    (local.get $p))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (global.set $heap (i32.const 65536))
    (drop (call $get_property (i32.const 16) (i32.const 12) (i32.const 200) (i32.const 204)))
    ;; "/spi" as a little-endian i32
    (if (i32.eq (i32.load (i32.load (i32.const 200))) (i32.const 0x6970732f))
      (then (loop $forever (br $forever))))
    (i32.const 0))
)
