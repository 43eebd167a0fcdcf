// Typed IPAM errors: admission turns `message` into the denial users read, so every message
// names the address, the subnet and what to do about it.

export type IpamErrorCode = "OutsidePool" | "Taken" | "Cooling" | "Exhausted" | "Invalid";

export interface IpamErrorDetails {
  /** The subnet (MacvlanSubnet name) the request was for, when known. */
  subnet?: string;
  /** The address the request was about, as given or normalised. */
  ip?: string;
}

export class IpamError extends Error {
  readonly code: IpamErrorCode;
  readonly subnet?: string;
  readonly ip?: string;

  constructor(code: IpamErrorCode, message: string, details: IpamErrorDetails = {}) {
    super(message);
    this.name = "IpamError";
    this.code = code;
    this.subnet = details.subnet;
    this.ip = details.ip;
  }
}

export const isIpamError = (e: unknown, code?: IpamErrorCode): e is IpamError =>
  e instanceof IpamError && (code === undefined || e.code === code);
