// @peculiar/x509 pulls in tsyringe, which refuses to load without the Reflect metadata
// API. tsyringe only needs define/get/getOwn metadata keyed by target, so this covers it
// without another dependency. Must be imported before "@peculiar/x509".
type Store = Map<unknown, unknown>;
const stores = new WeakMap<object, Store>();

const R = Reflect as unknown as Record<string, unknown>;
if (typeof R.getMetadata !== "function") {
  const own = (key: unknown, target: object) => stores.get(target)?.get(key);
  R.defineMetadata = (key: unknown, value: unknown, target: object) => {
    let s = stores.get(target);
    if (!s) stores.set(target, (s = new Map()));
    s.set(key, value);
  };
  R.getOwnMetadata = own;
  R.getMetadata = (key: unknown, target: object) => {
    for (let t: object | null = target; t; t = Object.getPrototypeOf(t)) {
      const v = own(key, t);
      if (v !== undefined) return v;
    }
    return undefined;
  };
}
