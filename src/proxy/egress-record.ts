// One connection (or, for a flood of refusals, a summary of many) a sandbox made through its egress proxy.
export interface EgressRecord {
  host: string;
  port: number;
  method: string;
  /** True when policy and address rules let the connection go out (it may still have failed: see reason). */
  allowed: boolean;
  /** Why it was refused, or why an allowed connection failed or ended early. */
  reason?: string;
  /** The IP address connected to (or last tried). */
  address?: string;
  /** Payload bytes from the sandbox: tunnel bytes for CONNECT, the request body for plain HTTP. */
  bytesUp: number;
  /** Payload bytes to the sandbox: tunnel bytes for CONNECT, the response body for plain HTTP. */
  bytesDown: number;
  startedAt: number;
  durationMs: number;
  /** How many connections this record stands for: 1, or more for a summary of refusals (see refusal-summary.ts). */
  count: number;
}
