/** A registry under benchmark: anonymous push and pull on `baseUrl`. */
export interface OciTarget {
  /** As it appears in the results: "holdfast", "distribution", … */
  name: string;
  baseUrl: string;
  /** The registry process, for its RSS. */
  pid: number;
  stop(): Promise<void>;
}
