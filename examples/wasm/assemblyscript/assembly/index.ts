// A Proxy-Wasm filter written with a third-party SDK (AssemblyScript,
// @solo-io/proxy-runtime 0.1.8, the SDK Envoy's and Istio's users use), to show that
// haetae runs SDK-built modules unchanged: answers 403 to requests carrying the header
// named by the plugin configuration, adds `x-as-filter: passed` to the others, and adds
// `x-as-root: <plugin_root_id>` to every response. The root id must be `as_block`
// (`root_id = "as_block"` in the filter's config).
// Build: examples/wasm/build.sh (needs `npm ci` at the repository root).
export * from "@solo-io/proxy-runtime/proxy";
import {
  RootContext,
  Context,
  registerRootContext,
  FilterHeadersStatusValues,
  stream_context,
  send_local_response,
  GrpcStatusValues,
  log,
  LogLevelValues,
} from "@solo-io/proxy-runtime";

class BlockRoot extends RootContext {
  createContext(context_id: u32): Context {
    return new Block(context_id, this);
  }
}

class Block extends Context {
  constructor(context_id: u32, root_context: BlockRoot) {
    super(context_id, root_context);
  }

  onRequestHeaders(headers: u32, end_of_stream: bool): FilterHeadersStatusValues {
    const header = this.root_context.getConfiguration();
    if (header != "" && stream_context.headers.request.get(header) != "") {
      log(LogLevelValues.info, "blocking a request carrying " + header);
      send_local_response(403, "as-block", String.UTF8.encode("blocked by AssemblyScript\n"), [],
        GrpcStatusValues.Unknown);
      return FilterHeadersStatusValues.StopIteration;
    }
    stream_context.headers.request.add("x-as-filter", "passed");
    return FilterHeadersStatusValues.Continue;
  }

  onResponseHeaders(headers: u32, end_of_stream: bool): FilterHeadersStatusValues {
    stream_context.headers.response.add("x-as-root", "as_block");
    return FilterHeadersStatusValues.Continue;
  }
}

registerRootContext((context_id: u32) => { return new BlockRoot(context_id); }, "as_block");
