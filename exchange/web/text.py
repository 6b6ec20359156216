"""The pages' words, Chinese first, with English: ``TEXT[key] = (zh, en)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Literal

Lang = Literal["zh", "en"]
LANGS: Final[tuple[Lang, ...]] = ("zh", "en")

TEXT: Final[dict[str, tuple[str, str]]] = {
    "brand": ("OneHub 一门式政务服务", "OneHub one-door services"),
    "skip": ("跳到主要内容", "Skip to main content"),
    "nav": ("页面", "Pages"),
    "desk": ("窗口受理台", "Counter desk"),
    "me": ("我的数据使用记录", "My data access"),
    "supervision": ("效能监督", "Supervision"),
    "home": ("OneHub 页面", "OneHub pages"),
    "desk_blurb": (
        "窗口人员一号申办：核验申请人免提交的材料，打印回执。",
        "Counter clerks: check which materials the applicant need not bring; print a receipt.",
    ),
    "me_blurb": (
        "持证人查看谁在何时为何使用了本人数据，并撤回授权。",
        "Holders see who used their data, when and why, and revoke consents.",
    ),
    "supervision_blurb": (
        "部门接入、数据新鲜度、共享使用与免提交证明统计。",
        "Department onboarding, data freshness, exchange use and certificates not asked for.",
    ),
    "api_docs": ("API 文档（OpenAPI）", "API documentation (OpenAPI)"),
    "footer": (
        "广东省政务数据共享交换平台 · 本页面的数据均来自公开的 /v1 接口",
        "Guangdong government data-sharing exchange · every figure here comes from the "
        "public /v1 API",
    ),
    "sign_in": ("登录", "Sign in"),
    "sign_out": ("退出", "Sign out"),
    "sign_in_help_desk": (
        "请使用本窗口的接入凭证（counter 类消费方密钥）登录。",
        "Sign in with your counter's consumer key (a consumer of kind counter).",
    ),
    "sign_in_help_me": (
        "由为持证人提供服务的受理系统（网上办事大厅等）登录，并负责核实持证人身份。",
        "The intake system serving the holder (e.g. the online hall) signs in and vouches "
        "that it authenticated the holder.",
    ),
    "sign_in_help_supervision": (
        "请使用监督人员的接入凭证登录。",
        "Sign in with the supervisor's consumer key.",
    ),
    "consumer_key": ("接入密钥", "Consumer key"),
    "consumer_key_help": (
        "形如 oh_…，仅保存在本浏览器的 HttpOnly Cookie 中。",
        "Reads oh_…; kept only in an HttpOnly cookie of this browser.",
    ),
    "key_invalid": (
        "密钥无效或已停用，请重新登录。",
        "The key is not valid or is disabled; sign in again.",
    ),
    "signed_out": ("已退出。", "Signed out."),
    "csrf_failed": (
        "表单已过期，请重新提交。",
        "The form has expired; please submit it again.",
    ),
    "check": ("材料核验", "Material check"),
    "service_item": ("办理事项", "Service item"),
    "service_item_help": (
        "输入中文或英文名称检索，或直接输入事项编码。",
        "Type a Chinese or English name to search, or the item code.",
    ),
    "id_number": ("证件号码", "ID number"),
    "id_number_help": (
        "居民身份证号码或统一社会信用代码；不会显示在地址栏或日志中。",
        "Resident ID number or unified social credit code; never shown in the address bar or logs.",
    ),
    "purpose": ("用证事由", "Purpose"),
    "required": ("（必填）", "(required)"),
    "purpose_help": (
        "为何需要使用申请人的数据，将记入审计日志。",
        "Why the applicant's data is needed; it is written to the audit log.",
    ),
    "check_button": ("核验材料", "Check materials"),
    "checklist": ("材料清单", "Checklist"),
    "applicant": ("申请人", "Applicant"),
    "covered_count": ("免提交", "Not to bring"),
    "status_covered": ("已有电子证照，免提交", "Covered by an e-license"),
    "status_consent_required": ("需持证人授权", "Consent required"),
    "status_missing": ("需申请人提交", "To be brought"),
    "reason_applicant_supplies": ("由申请人提供", "supplied by the applicant"),
    "reason_not_shared": ("该证照不向本部门共享", "not shared with this department"),
    "reason_no_valid_license": ("未查到有效证照", "no valid license found"),
    "reason_consent_required": (
        "有条件共享：需持证人对本窗口和本事由授权",
        "conditional share: needs the holder's consent for this counter and purpose",
    ),
    "license": ("证照", "License"),
    "issuer": ("发证部门", "Issuer"),
    "license_status": ("状态", "Status"),
    "license_id": ("证照标识", "License identifier"),
    "copy_until": ("加注件有效期至", "Annotated copy valid until"),
    "lic_valid": ("有效", "valid"),
    "lic_suspended": ("暂停", "suspended"),
    "lic_revoked": ("已撤销", "revoked"),
    "lic_expired": ("已过期", "expired"),
    "lic_cancelled": ("已注销", "cancelled"),
    "lic_superseded": ("已更新", "superseded"),
    "qr_caption": (
        "加注件二维码：可离线验签（onehub verify）",
        "QR code of the annotated copy: verifies offline (onehub verify)",
    ),
    "chars": ("字符", "characters"),
    "record_consent": ("记录持证人授权", "Record the holder's consent"),
    "record_consent_help": (
        "持证人在场并已核实身份时，可授权本窗口为本事由读取上述有条件共享证照。",
        "With the holder present and identified, they may consent that this counter reads the "
        "conditional-share licenses above for this purpose.",
    ),
    "consent_days": ("授权期限", "Consent lasts"),
    "days_1": ("1 天", "1 day"),
    "days_7": ("7 天", "7 days"),
    "days_30": ("30 天", "30 days"),
    "record_consent_button": (
        "持证人同意，记录授权并重新核验",
        "Holder agrees: record and re-check",
    ),
    "consent_recorded": ("已记录授权。", "Consent recorded."),
    "print_receipt": ("打印免提交回执", "Print the receipt"),
    "receipt": ("免提交材料回执", "Receipt: materials not asked for"),
    "receipt_date": ("日期", "Date"),
    "receipt_not_brought": (
        "以下材料已通过电子证照核验，申请人无需提交纸质材料：",
        "These materials were checked as e-licenses; the applicant did not have to bring paper:",
    ),
    "receipt_none": ("（无）", "(none)"),
    "receipt_still_needed": ("仍需提交：", "Still to be brought:"),
    "receipt_footer": (
        "本回执由 OneHub 一门式政务服务平台生成；证照可凭二维码或证照标识离线验签。",
        "Issued by OneHub; each license verifies offline by its QR code or identifier.",
    ),
    "material": ("材料", "Material"),
    "item_unknown": (
        "未找到该办理事项，请从列表中选择。",
        "Unknown service item: pick one from the list.",
    ),
    "purpose_missing": (
        "请填写用证事由（至少 2 个字）。",
        "Enter the purpose (at least 2 characters).",
    ),
    "id_missing": ("请输入证件号码。", "Enter the ID number."),
    "holder": ("持证人", "Holder"),
    "me_help": (
        "受理系统已核实持证人身份后，输入其证件号码即可查看所有非限制的数据使用记录和授权。",
        "Once the intake system has identified the holder, enter their ID number to see every "
        "non-restricted access to their data and their consents.",
    ),
    "holder_kind": ("持证人类型", "Holder kind"),
    "natural_person": ("自然人", "Natural person"),
    "legal_person": ("法人", "Legal person"),
    "show_my_data": ("查看", "Show"),
    "my_consents": ("我的授权", "My consents"),
    "consent_for": ("授权对象", "For"),
    "license_types": ("证照类型", "License types"),
    "all_conditional": ("全部有条件共享证照", "all conditional-share licenses"),
    "granted": ("授权时间", "Granted"),
    "expires": ("到期", "Expires"),
    "state": ("状态", "State"),
    "action": ("操作", "Action"),
    "consent_active": ("有效", "active"),
    "consent_revoked": ("已撤回", "revoked"),
    "consent_expired": ("已到期", "expired"),
    "revoke": ("撤回授权", "Revoke"),
    "revoke_confirm": ("确定撤回此授权？", "Revoke this consent?"),
    "revoked_notice": ("授权已撤回。", "The consent is revoked."),
    "no_consents": ("没有授权记录。", "No consents."),
    "my_history": ("数据使用记录", "Access history"),
    "history_help": (
        "按时间倒序；依法暂不公开的调查类查询在解禁日后显示。",
        "Newest first; accesses restricted by an investigation appear from their embargo date.",
    ),
    "when": ("时间", "When"),
    "department": ("部门", "Department"),
    "consumer": ("使用方", "Consumer"),
    "what": ("操作", "What"),
    "licenses_read": ("涉及证照", "Licenses"),
    "result": ("结果", "Result"),
    "no_history": ("暂无使用记录。", "No accesses yet."),
    "act_lookup": ("一号查询", "lookup"),
    "act_material_check": ("材料核验", "material check"),
    "act_fetch": ("调取证照", "fetch"),
    "act_annotated_copy": ("加注件", "annotated copy"),
    "act_verify": ("验证", "verification"),
    "act_consent_record": ("记录授权", "consent recorded"),
    "act_consent_revoke": ("撤回授权", "consent revoked"),
    "act_consent_list": ("查看授权", "consents viewed"),
    "act_history": ("查看记录", "history viewed"),
    "as_of": ("统计时间", "As of"),
    "window_days": ("统计天数", "Days"),
    "apply": ("更新", "Update"),
    "sources": ("数据源新鲜度与质量", "Sources: freshness and quality"),
    "freshness_help": (
        "绿：在时效要求（SLA）内；黄：超过 SLA；红：超过 2 倍 SLA。",
        "Green: within the SLA; yellow: past the SLA; red: more than twice past it.",
    ),
    "fresh_green": ("正常", "green"),
    "fresh_yellow": ("黄牌", "yellow"),
    "fresh_red": ("红牌", "red"),
    "fresh_not_started": ("未接入", "not started"),
    "quality": ("质量", "quality"),
    "last_load": ("最近入湖", "Last load"),
    "never": ("从未", "never"),
    "age": ("已过", "Age"),
    "rows": ("记录数", "Rows"),
    "loaded": ("入湖", "loaded"),
    "quarantined": ("隔离", "quarantined"),
    "runs": ("次运行", "runs"),
    "quarantine_trend": ("隔离率趋势", "Quarantine-rate trend"),
    "open_cards": ("未关闭的黄牌/红牌", "Open cards"),
    "card_freshness": ("新鲜度", "freshness"),
    "card_quality": ("质量", "quality"),
    "use_per_day": ("每日共享使用量（按部门）", "Exchange use per day, by department"),
    "as_table": ("以表格查看", "Show as a table"),
    "day": ("日期", "Day"),
    "lookups": ("一号查询", "Lookups"),
    "material_checks": ("材料核验", "Material checks"),
    "no_use": ("统计期内没有使用。", "No use in this window."),
    "not_asked": ("免提交证明（按办理事项）", "Certificates not asked for, per service item"),
    "not_asked_help": (
        "材料核验中已由电子证照覆盖、申请人无需提交的材料份数——改革成效的衡量标准。",
        "Materials covered by an e-license in material checks, which applicants did not have to "
        "bring: the reform's own measure of success.",
    ),
    "not_asked_short": ("免提交份数", "Not asked for"),
    "by_material": ("按材料", "By material"),
    "departments": ("部门接入（按批次）", "Departments by onboarding batch"),
    "batch_1": ("第一批", "Batch 1"),
    "batch_2": ("第二批", "Batch 2"),
    "batch_3": ("第三批", "Batch 3"),
    "deadline": ("期限", "deadline"),
    "onboarded": ("已接入", "onboarded"),
    "not_onboarded": ("未接入", "not onboarded"),
    "data_flowing": ("数据已入湖", "data flowing"),
    "chart_use": ("每日共享使用量", "Exchange use per day"),
    "chart_saving": ("免提交证明份数", "Certificates not asked for"),
    "error_generic": ("操作未完成：", "Not done: "),
    "err_id_length": ("证件号码位数不正确。", "The ID number has the wrong length."),
    "err_id_charset": ("证件号码含有非法字符。", "The ID number has characters it cannot have."),
    "err_id_check_char": ("证件号码校验位不正确。", "The ID number's check character is wrong."),
    "err_id_birth_date": (
        "证件号码中的出生日期无效。",
        "The birth date in the ID number is invalid.",
    ),
    "err_id_region": ("证件号码中的地区码无效。", "The region code in the ID number is invalid."),
    "err_uscc_length": ("统一社会信用代码位数不正确。", "The credit code has the wrong length."),
    "err_uscc_check_char": (
        "统一社会信用代码校验位不正确。",
        "The credit code's check character is wrong.",
    ),
    "err_scope_missing": ("本接入方无权进行此操作。", "This consumer may not do this."),
    "err_consent_not_found": ("未找到该授权。", "No such consent."),
    "err_consent_revoked": ("该授权已撤回。", "This consent was already revoked."),
    "err_holder_kind_mismatch": (
        "该事项的申请人类型与证件号码不符。",
        "The service item is for another kind of applicant.",
    ),
    "err_rate_limited": ("请求过于频繁，请稍后再试。", "Too many calls; try again shortly."),
}


def translator(lang: Lang) -> Callable[[str], str]:
    """``t(key)``: the text of ``key`` in ``lang`` (the key itself if it has none)."""
    index = LANGS.index(lang)

    def t(key: str) -> str:
        found = TEXT.get(key)
        return found[index] if found else key

    return t
