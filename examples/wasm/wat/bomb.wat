;; A Proxy-Wasm filter that, on paths starting with `/bomb`, grows its memory one page at
;; a time and writes to every new page, forever: the host's memory cap must trap it (and
;; the gateway's memory must not follow). Other paths pass.
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
    (local $page i32)
    (global.set $heap (i32.const 65536))
    (drop (call $get_property (i32.const 16) (i32.const 12) (i32.const 200) (i32.const 204)))
    ;; "/bom" as a little-endian i32
    (if (i32.eq (i32.load (i32.load (i32.const 200))) (i32.const 0x6d6f622f))
      (then
        (loop $grow
          (local.set $page (memory.grow (i32.const 1)))
          ;; touch every 4 KiB of the new page so it is really resident
          (if (i32.ne (local.get $page) (i32.const -1))
            (then
              (i32.store (i32.mul (local.get $page) (i32.const 65536)) (i32.const 1))
              (i32.store (i32.add (i32.mul (local.get $page) (i32.const 65536)) (i32.const 16384)) (i32.const 1))
              (i32.store (i32.add (i32.mul (local.get $page) (i32.const 65536)) (i32.const 32768)) (i32.const 1))
              (i32.store (i32.add (i32.mul (local.get $page) (i32.const 65536)) (i32.const 49152)) (i32.const 1))))
          (br $grow))))
    (i32.const 0))
)
