// graphql-codegen: TypeScript types and typed documents for every operation in graphql/operations/,
// generated into .ci-work/typescript/ (not checked in). Run from this directory: npm run codegen.
// typescript-operations (v6+) emits the enums and input types the operations use by itself.
import type { CodegenConfig } from "@graphql-codegen/cli";

const config: CodegenConfig = {
  schema: "../../graphql/schema.graphql",
  documents: "../../graphql/operations/*.graphql",
  emitLegacyCommonJSImports: false,
  generates: {
    "../../.ci-work/typescript/graphql.ts": {
      plugins: ["typescript-operations", "typed-document-node"],
      config: {
        scalars: { UUID: "string", Date: "string", DateTime: "string", JSON: "unknown" },
        enumsAsTypes: true,
        strictScalars: true,
        useTypeImports: true,
      },
    },
  },
};

export default config;
