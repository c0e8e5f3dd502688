import path from 'node:path';
import { expect } from 'chai';
import { ESLint } from 'eslint';

/** Lints one planted file under src/ with the project's config, and returns the layer rule's messages. */
async function layerMessages(file: string, code: string): Promise<string[]> {
  const eslint = new ESLint({ cwd: process.cwd() });
  const [result] = await eslint.lintText(code, { filePath: path.resolve('src', file) });
  return result!.messages.filter((message) => message.ruleId === 'holdfast/layers').map((message) => message.message);
}

describe('lint: the layer rules of src/', function () {
  it('refuses a client importing its server, with the reason', async function () {
    const messages = await layerMessages('driver/planted.ts', "import { Hold } from '../hold/hold.ts';\nexport const planted = Hold;\n");
    expect(messages).to.have.length(1);
    expect(messages[0]).to.include('src/driver may not import src/hold').and.include('never imports its server');
  });

  it('refuses the registry reaching a hold other than through the driver', async function () {
    const messages = await layerMessages('registry/routes/planted.ts', "export { Hold } from '../../hold/hold.ts';\n");
    expect(messages).to.have.length(1);
    expect(messages[0]).to.include('only through the driver');
  });

  it('refuses core importing anything above it, dynamic imports too', async function () {
    const messages = await layerMessages('core/planted.ts', "export const planted = () => import('../protocol/hold-api.ts');\n");
    expect(messages).to.have.length(1);
    expect(messages[0]).to.include('src/core may not import src/protocol');
  });

  it("keeps the npm plugin out of the registry and of the OCI tables, and the registry out of the npm tables", async function () {
    expect(await layerMessages('verdaccio/planted.ts', "import { Registry } from '../registry/registry.ts';\nexport const planted = Registry;\n")).to.have.length(1);
    expect(await layerMessages('verdaccio/planted.ts', "import { SqlMetadataStore } from '../metadata/oci/store.ts';\nexport const planted = SqlMetadataStore;\n")).to.have.length(1);
    expect(await layerMessages('registry/planted.ts', "import { PackageStore } from '../metadata/npm/packages.ts';\nexport const planted = PackageStore;\n")).to.have.length(1);
  });

  it('keeps the web pages off the driver and the hold protocol', async function () {
    const messages = await layerMessages('registry/ui/planted.ts', "import { createHoldDriver } from '../../driver/index.ts';\nexport const planted = createHoldDriver;\n");
    expect(messages).to.have.length(1);
    expect(messages[0]).to.include('src/registry/ui may not import src/driver');
    expect(await layerMessages('registry/ui/planted.ts', "import { deleteReference } from '../routes/manifests.ts';\nexport const planted = deleteReference;\n")).to.deep.equal([]);
  });

  it('lets each part import what is below it', async function () {
    expect(await layerMessages('registry/planted.ts', "import { createHoldDriver } from '../driver/index.ts';\nimport { openDatabase } from '../metadata/db.ts';\nexport const planted = [createHoldDriver, openDatabase];\n")).to.deep.equal([]);
    expect(await layerMessages('verdaccio/planted.ts', "import { PackageStore } from '../metadata/npm/packages.ts';\nexport const planted = PackageStore;\n")).to.deep.equal([]);
    expect(await layerMessages('cli/planted.ts', "import { Hold } from '../hold/hold.ts';\nexport const planted = Hold;\n")).to.deep.equal([]);
  });
});
