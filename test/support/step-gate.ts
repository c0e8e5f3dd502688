/**
 * Holds one server at one step of a protocol while the test does something
 * else: `arm(matches)` resolves once a call to `hook` matches, and that call
 * waits until `resume()`. One call is held per arming; the others pass.
 */
export class StepGate {
  #armed: { matches: (step: string, subject: string) => boolean; reached: () => void } | undefined;
  #resume: () => void = () => {};
  #resumed: Promise<void> = Promise.resolve();

  arm(matches: (step: string, subject: string) => boolean): Promise<void> {
    this.#resumed = new Promise<void>((resolve) => (this.#resume = resolve));
    return new Promise<void>((reached) => (this.#armed = { matches, reached }));
  }

  resume(): void {
    this.#resume();
  }

  readonly hook = async (step: string, subject = ''): Promise<void> => {
    const armed = this.#armed;
    if (!armed?.matches(step, subject)) return;
    this.#armed = undefined;
    armed.reached();
    await this.#resumed;
  };
}
