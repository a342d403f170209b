// How a front-end uses the generated types: one typed `execute` for every trusted document.
// CI type-checks this file against the generated code, so a contract change that breaks a
// front-end's use of an operation fails here first (the @ts-expect-error lines must stay errors).
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { print } from "graphql";

import {
  ReferralInboxDocument,
  SubjectFileDocument,
  SubmitReferralDocument,
  type ReferralStatus,
} from "../../.ci-work/typescript/graphql";

export type GraphQLError = { message: string; path?: (string | number)[]; extensions?: { code?: string; field?: string } };
export type Result<TData> = { data?: TData | null; errors?: GraphQLError[] };

/** POST one trusted document. Production accepts only graphql/operations/ documents: their
 *  text as printed here matches, or send `documentId` from `registry trusted-documents`. */
export async function execute<TData, TVariables>(
  url: string,
  token: string,
  purpose: string,
  document: TypedDocumentNode<TData, TVariables>,
  variables: TVariables,
): Promise<Result<TData>> {
  const response = await fetch(url, {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      Authorization: `Bearer ${token}`,
      "Registry-Purpose": purpose,
    },
    body: JSON.stringify({ query: print(document), variables }),
  });
  return (await response.json()) as Result<TData>;
}

export async function example(url: string, token: string): Promise<void> {
  const submitted: ReferralStatus = "SUBMITTED";
  const inbox = await execute(url, token, "THREAT_ASSESSMENT", ReferralInboxDocument, { status: [submitted], first: 20 });
  for (const edge of inbox.data?.referrals?.edges ?? []) {
    const reference: string = edge.node.subject?.reference ?? "(out of scope)";
    const version: number = edge.node.version;
    console.log(reference, version);
  }

  const file = await execute(url, token, "CASE_SUPERVISION", SubjectFileDocument, { id: "00000000-0000-0000-0000-000000000000" });
  // A field the caller may not read is null, with a FORBIDDEN error naming it.
  const forbidden = (file.errors ?? []).filter((e) => e.extensions?.code === "FORBIDDEN").map((e) => e.extensions?.field);
  const nationalNumber: string | null | undefined = file.data?.subject?.nationalNumber;
  console.log(forbidden, nationalNumber, file.data?.subject?.notes.map((n) => n.body));

  // @ts-expect-error: the document does not select `rationale`, so the result type has none
  console.log(file.data?.subject?.latestAssessment?.rationale);

  // @ts-expect-error: a workflow step needs the version it is based on (expectedVersion)
  await execute(url, token, "REFERRAL", SubmitReferralDocument, { id: "00000000-0000-0000-0000-000000000000" });
}
